"""The spec editor: pages for the policy team, htmx fragments for inline edits."""

from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from specloop.errors import ValidationFailed
from specloop.roles import ADMIN, POLICY, role_required, user_roles

from . import selectors, services
from .api import export_response, parse_diff_numbers
from .document import category_tree, parse_json, parse_yaml
from .forms import CategoryForm, ExampleForm, LinesForm, SpecCreateForm, UploadForm

EXAMPLE_SPEC = Path(__file__).with_name("example_spec.yaml")
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


def example_document() -> Any:
    return parse_yaml(EXAMPLE_SPEC.read_text(encoding="utf-8"))


def _read_upload(upload) -> Any:
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationFailed.one("file", f"the file is {upload.size // 1024} KiB; the limit is 2 MiB")
    raw = upload.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed.one("file", "the file is not UTF-8 text") from None
    document = parse_json(text) if upload.name.lower().endswith(".json") else parse_yaml(text)
    if document is None:
        raise ValidationFailed.one("file", "the file is empty or holds no document")
    return document


def _version_url(version) -> str:
    return reverse("taxonomy:version", args=[version.spec_id, version.number])


@role_required(POLICY, ADMIN)
@require_http_methods(["GET", "POST"])
def spec_list_view(request: HttpRequest) -> HttpResponse:
    form = SpecCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if POLICY not in user_roles(request.user):
            return HttpResponse("Creating specs needs the policy role.", status=403)
        if form.is_valid():
            start = form.cleaned_data["start"]
            document = None  # blank: the service starts from the empty document
            if start == "example":
                document = example_document()
            elif start == "upload":
                document = _read_upload(form.cleaned_data["file"])
            version = services.spec_create(user=request.user, name=form.cleaned_data["name"], document=document)
            return redirect(_version_url(version))
    specs = selectors.spec_list(user=request.user)
    return render(request, "taxonomy/spec_list.html", {"specs": specs, "form": form})


@role_required(POLICY, ADMIN)
def spec_detail_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    return redirect(_version_url(selectors.spec_version_latest(spec=spec)))


def _load(request: HttpRequest, spec_id: int, number: int):
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    return spec, selectors.spec_version_get(spec=spec, number=number)


def _pct(rate: float) -> str:
    return f"{rate * 100:.3g}%"


def _body_context(request: HttpRequest, version) -> dict[str, Any]:
    doc = version.document
    scale = doc["rubric"]["severity_scale"]
    budgets = doc["budgets"]
    top = max(budgets.values(), default=0) or 1
    return {
        "spec": version.spec,
        "version": version,
        "doc": doc,
        "tree": [
            {
                "depth": depth,
                "cat": cat,
                "severity_label": scale[cat["severity"]] if cat["severity"] < len(scale) else "",
                "behavior_label": cat["behavior"].replace("_", " "),
                "budget": budgets.get(cat["key"]),
                "budget_pct": _pct(budgets[cat["key"]]) if cat["key"] in budgets else "",
            }
            for depth, cat in category_tree(doc["categories"])
        ],
        "can_edit": version.is_draft and POLICY in user_roles(request.user),
        "severity_scale": scale,
        "budget_rows": [
            {"key": c["key"], "name": c["name"], "pct": _pct(budgets[c["key"]]),
             "width": max(2, round(100 * budgets[c["key"]] / top))}
            for c in doc["categories"] if c["key"] in budgets
        ],
    }


def _form(request: HttpRequest, version, partial: str, form_id: str, context: dict[str, Any], invalid: bool) -> HttpResponse:
    """An inline form fragment; an invalid POST re-renders it in place with its errors."""
    response = render(
        request, f"taxonomy/version.html#{partial}",
        {"spec": version.spec, "version": version, "form_id": form_id, **context}, status=400 if invalid else 200,
    )
    if invalid:
        response["HX-Retarget"] = f"#form-{form_id}"
        response["HX-Reswap"] = "outerHTML"
    return response


def _edited(request: HttpRequest, spec, version) -> HttpResponse:
    """After an inline edit: the new spec body for htmx, a redirect to the page otherwise."""
    version.spec = spec
    if not request.htmx:
        return redirect(_version_url(version))
    return _render_body(request, version)


def _render_body(request: HttpRequest, version) -> HttpResponse:
    """The new spec body, plus the recent-changes panel swapped out of band so it stays current."""
    context = {
        **_body_context(request, version),
        "changes": selectors.spec_changes(spec=version.spec, version=version)[:8],
        "oob": True,
    }
    body = render(request, "taxonomy/version.html#spec-body", context)
    body.write(render(request, "taxonomy/version.html#recent-changes", context).content)
    return body


@role_required(POLICY, ADMIN)
def version_view(request: HttpRequest, spec_id: int, number: int) -> HttpResponse:
    spec, version = _load(request, spec_id, number)
    versions = selectors.spec_versions(spec=spec)
    context = {
        **_body_context(request, version),
        "versions": versions,
        "latest": versions[-1],
        "upload_form": UploadForm(),
        "changes": selectors.spec_changes(spec=spec, version=version)[:8],
    }
    return render(request, "taxonomy/version.html", context)


# --- inline category edits (htmx) ------------------------------------------------------------------


def _category(doc: dict[str, Any], key: str) -> dict[str, Any]:
    category = next((c for c in doc["categories"] if c["key"] == key), None)
    if category is None:
        raise ValidationFailed.one("key", f"no category {key!r} in this version")
    return category


@role_required(POLICY)
@require_http_methods(["GET", "POST"])
def category_form_view(request: HttpRequest, spec_id: int, number: int, key: str | None = None) -> HttpResponse:
    """GET: the add/edit form fragment. POST: apply it and answer the re-rendered spec body."""
    spec, version = _load(request, spec_id, number)
    doc = version.document
    current = _category(doc, key) if key else None
    initial = CategoryForm.initial_for(doc, current) if current else {
        "parent": request.GET.get("parent", ""), "severity": 2, "behavior": "refuse"
    }
    form = CategoryForm(request.POST or None, initial=initial, document=doc, editing=key)
    if request.method == "POST" and form.is_valid():
        category = form.category()
        budget = form.cleaned_data["budget"]
        if current is None:
            version = services.category_add(version=version, user=request.user, category=category, budget=budget)
        else:
            version = services.category_update(
                version=version, user=request.user, key=key, changes=category, budget=budget
            )
        return _edited(request, spec, version)
    form_id = f"category-{key}" if key else "category-new"
    return _form(request, version, "category-form", form_id, {"form": form, "editing": current},
                 invalid=request.method == "POST")


@role_required(POLICY)
@require_POST
def category_delete_view(request: HttpRequest, spec_id: int, number: int, key: str) -> HttpResponse:
    spec, version = _load(request, spec_id, number)
    version = services.category_delete(version=version, user=request.user, key=key)
    return _edited(request, spec, version)


@role_required(POLICY)
@require_POST
def category_move_view(request: HttpRequest, spec_id: int, number: int, key: str) -> HttpResponse:
    spec, version = _load(request, spec_id, number)
    version = services.category_move(version=version, user=request.user, key=key, direction=request.POST.get("direction", ""))
    return _edited(request, spec, version)


@role_required(POLICY)
@require_http_methods(["GET", "POST"])
def example_form_view(
    request: HttpRequest, spec_id: int, number: int, key: str, index: int | None = None
) -> HttpResponse:
    spec, version = _load(request, spec_id, number)
    category = _category(version.document, key)
    initial = category["examples"][index] if index is not None and index < len(category["examples"]) else {"verdict": "disallowed"}
    form = ExampleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        text, verdict = form.cleaned_data["text"], form.cleaned_data["verdict"]
        if index is None:
            version = services.example_add(version=version, user=request.user, key=key, text=text, verdict=verdict)
        else:
            version = services.example_update(
                version=version, user=request.user, key=key, index=index, text=text, verdict=verdict
            )
        return _edited(request, spec, version)
    form_id = f"example-{key}-{'new' if index is None else index}"
    return _form(request, version, "example-form", form_id, {"form": form, "category": category, "index": index},
                 invalid=request.method == "POST")


@role_required(POLICY)
@require_POST
def example_delete_view(request: HttpRequest, spec_id: int, number: int, key: str, index: int) -> HttpResponse:
    spec, version = _load(request, spec_id, number)
    version = services.example_delete(version=version, user=request.user, key=key, index=index)
    return _edited(request, spec, version)


@role_required(POLICY)
@require_POST
def example_move_view(request: HttpRequest, spec_id: int, number: int, key: str, index: int) -> HttpResponse:
    spec, version = _load(request, spec_id, number)
    version = services.example_move(
        version=version, user=request.user, key=key, index=index, direction=request.POST.get("direction", "")
    )
    return _edited(request, spec, version)


@role_required(POLICY)
@require_http_methods(["GET", "POST"])
def lines_form_view(request: HttpRequest, spec_id: int, number: int, section: str) -> HttpResponse:
    """Goals or principles, edited as one item per line."""
    spec, version = _load(request, spec_id, number)
    if section not in ("goals", "principles"):
        raise ValidationFailed.one("section", "must be goals or principles")
    form = LinesForm(request.POST or None, initial={"lines": "\n".join(version.document[section])})
    if request.method == "POST" and form.is_valid():
        version = services.spec_version_set_list(version=version, user=request.user, section=section, items=form.items())
        return _edited(request, spec, version)
    return _form(request, version, "lines-form", section, {"form": form, "section": section}, invalid=False)


# --- lifecycle ---------------------------------------------------------------------------------------


@role_required(POLICY)
@require_POST
def publish_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    version = services.spec_publish(spec=spec, user=request.user)
    return redirect(_version_url(version))


@role_required(POLICY)
@require_POST
def draft_create_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    version = services.spec_draft_create(spec=spec, user=request.user)
    return redirect(_version_url(version))


@role_required(POLICY)
@require_POST
def upload_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    """An uploaded document replaces the draft, or starts a new draft when the latest is published."""
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        raise ValidationFailed.one("file", "choose a YAML or JSON file to upload")
    document = _read_upload(form.cleaned_data["file"])
    latest = selectors.spec_version_latest(spec=spec)
    if latest.is_draft:
        version = services.spec_version_replace_document(version=latest, user=request.user, document=document)
    else:
        version = services.spec_draft_create(spec=spec, user=request.user, document=document)
    return redirect(_version_url(version))


@role_required(POLICY, ADMIN)
def export_view(request: HttpRequest, spec_id: int, number: int, fmt: str) -> HttpResponse:
    _, version = _load(request, spec_id, number)
    return export_response(version, fmt, download=True)


@role_required(POLICY, ADMIN)
def diff_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    from_number, to_number = parse_diff_numbers(spec, request.GET)
    diff = selectors.spec_version_diff(spec=spec, from_number=from_number, to_number=to_number)
    return render(request, "taxonomy/diff.html", {"spec": spec, "diff": diff, "versions": selectors.spec_versions(spec=spec)})


@role_required(POLICY, ADMIN)
def history_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    return render(request, "taxonomy/history.html", {"spec": spec, "changes": selectors.spec_changes(spec=spec)[:500]})


@role_required(POLICY)
@require_POST
def editors_view(request: HttpRequest, spec_id: int) -> HttpResponse:
    spec = selectors.spec_get(user=request.user, spec_id=spec_id)
    usernames = [u.strip() for u in request.POST.get("usernames", "").replace(",", " ").split() if u.strip()]
    services.spec_editors_add(spec=spec, user=request.user, usernames=usernames)
    return redirect(_version_url(selectors.spec_version_latest(spec=spec)))
