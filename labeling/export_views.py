"""The export snapshots page: every snapshot a user can train on (campaign exports and imported datasets),
and the admin's "import pairs" form (TRL or HH-RLHF JSON lines → a read-only snapshot)."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from specloop.errors import ValidationFailed
from specloop.roles import ADMIN, POLICY, has_role, role_required

from . import selectors
from .import_jobs import (
    import_job_create,
    import_job_entry,
    import_jobs_running,
    import_run,
    runs_as_job,
    upload_discard,
)
from .models import ImportJob
from .pair_imports import pair_import_options
from .views import spooled_upload

PAGE_LIMIT = 1000


class PairImportForm(forms.Form):
    file = forms.FileField(label="Pairs file", error_messages={"required": "Choose a JSON-lines file of pairs to upload."})
    format = forms.ChoiceField(choices=[("trl", "TRL: prompt / chosen / rejected"),
                                        ("hh", "HH-RLHF: chosen / rejected dialogues")], initial="trl")
    name = forms.CharField(max_length=200, required=False, help_text="Shown wherever the snapshot is picked.")
    keep_empty = forms.BooleanField(required=False, label="Keep empty replies",
                                    help_text="Otherwise a reply with no text rejects the file, naming its line.")


def _context(request: HttpRequest, **extra) -> dict:
    is_admin = has_role(request.user, ADMIN)
    return {"exports": selectors.export_list(user=request.user)[:PAGE_LIMIT], "page_limit": PAGE_LIMIT,
            "can_import": is_admin, "form": extra.pop("form", PairImportForm() if is_admin else None),
            "import_jobs": import_jobs_running(user=request.user) if is_admin else [], **extra}


@role_required(POLICY, ADMIN)
def export_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/exports.html", _context(request))


def _import(request: HttpRequest, form: PairImportForm):
    """The new snapshot, or the import job a large file was handed to, or None with the reason on the form
    (a bad line names its number)."""
    if not form.is_valid():
        return None
    upload = form.cleaned_data["file"]
    path, handed = "", False
    try:
        options = {**pair_import_options(fmt=form.cleaned_data["format"], name=form.cleaned_data["name"] or upload.name),
                   "keep_empty": form.cleaned_data["keep_empty"], "filename": upload.name[:200], "field": "file"}
        path, size = spooled_upload(upload)  # the campaign item upload's size check and spooling
        if runs_as_job(size):
            job = import_job_create(user=request.user, kind=ImportJob.PAIRS, upload=path, size=size, options=options)
            handed = True
            return job
        return import_run(kind=ImportJob.PAIRS, user=request.user, upload=path, options=options)
    except ValidationFailed as error:
        form.add_error("file" if error.errors[0]["field"] in ("file", "body") or "line" in error.detail else None,
                       error.message)
        return None
    finally:
        if not handed:
            upload_discard(path)


@role_required(ADMIN)
@require_POST
def export_import_view(request: HttpRequest) -> HttpResponse:
    form = PairImportForm(request.POST, request.FILES)
    export = _import(request, form)
    if export is None:
        template = "labeling/exports.html#import-card" if request.htmx else "labeling/exports.html"
        return render(request, template, _context(request, form=form), status=400)
    if isinstance(export, ImportJob):
        if not request.htmx:
            messages.info(request, "The file is large: it is imported in the background. This page shows its progress.")
            return redirect("campaigns:import-job", export.pk)
        export.refresh_from_db()  # without a worker it may have run already
        context = _context(request, form=PairImportForm(), import_jobs=[import_job_entry(export)])
        return render(request, "labeling/exports.html#import-card", context, status=202)
    message = f"Imported “{export.name}”: {export.n_pairs} pairs as snapshot #{export.pk}."
    if not request.htmx:
        messages.success(request, message)
        return redirect("exports:list")
    context = _context(request, message=message, fresh=export.pk)
    response = render(request, "labeling/exports.html#import-card", context)
    response.write(render(request, "labeling/exports.html#exports-card", {**context, "oob": True}).content)
    return response
