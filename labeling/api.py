"""REST API for campaigns, items, next-task, judgments, agreement, adjudication and exports."""

from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from specloop.errors import ValidationFailed
from specloop.roles import IsAdmin, IsPolicyOrAdmin, IsRater, role_permission
from specloop.serializers import Body, Choice, Dict, Integer, List, Number, Text, body_parse
from taxonomy import selectors as spec_selectors
from taxonomy.models import SpecVersion

from . import import_jobs, selectors, services
from .exports import AGGREGATIONS
from .imports import FORMATS, detect_format_file
from .models import Assignment, Campaign, ExportSnapshot, ImportJob, Judgment

IsAnyRole = role_permission("rater", "policy", "admin")


class SpooledUpload(NamedTuple):
    path: str  # relative to MEDIA_ROOT
    size: int


class RawUploadParser(BaseParser):
    """Item and pair files (JSONL, HH-RLHF JSONL, CSV bodies), streamed to a file under MEDIA_ROOT in chunks:
    a request never holds the file in memory. The view that reads ``request.data`` owns (and removes) it."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return SpooledUpload(*import_jobs.upload_spool(import_jobs.stream_chunks(stream), field="body"))


def _upload(request: Request) -> SpooledUpload:
    data = request.data
    if isinstance(data, SpooledUpload) and data.size:
        return data
    if isinstance(data, SpooledUpload):
        import_jobs.upload_discard(data.path)
    raise ValidationFailed.one("body", "the body is empty: send the item file")


def _keep_empty(request: Request) -> bool:
    value = request.query_params.get("keep_empty", "0").lower()
    if value not in ("0", "1", "true", "false"):
        raise ValidationFailed.one("keep_empty", "must be 1 (keep empty replies) or 0 (refuse them)")
    return value in ("1", "true")


def _imported(request: Request, upload: SpooledUpload, *, kind: str, options: dict[str, Any],
              campaign: Campaign | None, answer) -> Response:
    """A small file imported now (201, ``answer(outcome)``); a large one handed to a job (202, its status)."""
    handed = False
    try:
        if import_jobs.runs_as_job(upload.size):
            job = import_jobs.import_job_create(user=request.user, kind=kind, upload=upload.path, size=upload.size,
                                                options=options, campaign=campaign)
            handed = True
            out = import_jobs.import_job_out(job)
            return Response(out, status=202, headers={"Location": out["url"]})
        outcome = import_jobs.import_run(kind=kind, user=request.user, upload=upload.path, options=options,
                                         campaign=campaign)
        return Response(answer(outcome), status=201)
    finally:
        if not handed:
            import_jobs.upload_discard(upload.path)


ImportJobSerializer = inline_serializer("ImportJob", {
    "id": serializers.IntegerField(), "kind": serializers.ChoiceField(["items", "pairs"]),
    "status": serializers.ChoiceField(["queued", "running", "succeeded", "failed"]),
    "progress": serializers.FloatField(help_text="share of the file read, 0..1"),
    "lines": serializers.IntegerField(help_text="lines read so far"),
    "campaign": serializers.IntegerField(allow_null=True), "snapshot": serializers.IntegerField(allow_null=True),
    "format": serializers.CharField(), "size_bytes": serializers.IntegerField(),
    "created_at": serializers.DateTimeField(), "finished_at": serializers.DateTimeField(allow_null=True),
    "url": serializers.CharField(),
    "result": serializers.JSONField(required=False, help_text="when succeeded: what a synchronous import answers"),
    "error": serializers.JSONField(required=False, help_text='when failed: {"error", "detail", "line"?}'),
})
KEEP_EMPTY_PARAMETER = OpenApiParameter(
    "keep_empty", str, enum=["0", "1"], description="1: keep replies that are empty (default: refuse the file, naming the line)")


def campaign_out(campaign: Campaign, *, progress: bool = False) -> dict[str, Any]:
    out = {
        "id": campaign.id,
        "name": campaign.name,
        "spec": campaign.spec_version.spec_id,
        "version": campaign.spec_version.number,
        "guidelines": campaign.guidelines,
        "overlap": campaign.overlap,
        "pairing": campaign.pairing,
        "category_weights": campaign.category_weights,
        "gold_share": campaign.gold_share,
        "assignment_timeout_seconds": campaign.assignment_timeout_seconds,
        "created_at": campaign.created_at,
    }
    if progress:
        out["raters"] = sorted(campaign.raters.values_list("username", flat=True))
        out["progress"] = selectors.campaign_progress(campaign=campaign)
    return out


class CampaignOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    spec = serializers.IntegerField()
    version = serializers.IntegerField()
    guidelines = serializers.CharField()
    overlap = serializers.IntegerField()
    pairing = serializers.ChoiceField([Campaign.ALL_PAIRS, Campaign.ADJACENT])
    category_weights = serializers.DictField(child=serializers.FloatField())
    gold_share = serializers.FloatField()
    assignment_timeout_seconds = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class CampaignDetailOut(CampaignOut):
    raters = serializers.ListField(child=serializers.CharField())
    progress = serializers.DictField(help_text="tasks, judgments and per-rater counts")


class CampaignCreateIn(Body):
    """A campaign; the spec version's category keys (for ``category_weights``) are checked on creation."""

    name = Text(message="a campaign needs a name")
    spec = Integer(message="is required: the id of a spec with a published version")
    version = Integer(required=False, allow_null=True, message="must be a version number, got {value!r}",
                      help_text="default: the latest published version")
    overlap = Integer(min_value=1, max_value=50, default=3, message="must be a whole number of raters per task, 1 to 50")
    guidelines = Text(required=False, allow_blank=True, allow_null=True, default="")
    pairing = Choice([Campaign.ALL_PAIRS, Campaign.ADJACENT], default=Campaign.ALL_PAIRS,
                     message="must be all_pairs or adjacent")
    category_weights = Dict(child=Number(min_value=0, message="must be a positive number"), required=False,
                            allow_null=True, message="must map category keys to positive numbers")
    gold_share = Number(min_value=0, max_value=0.5, default=0.0, message="must be a share between 0 and 0.5")
    assignment_timeout_seconds = Integer(min_value=30, max_value=7 * 86400, default=1800,
                                         message="must be between 30 seconds and 7 days")


def _published_version(user, spec_id: Any, number: Any) -> SpecVersion:
    spec = spec_selectors.spec_get(user=user, spec_id=spec_id)
    if number is None:
        version = spec.versions.filter(status=SpecVersion.PUBLISHED).select_related("spec").order_by("-number").first()
        if version is None:
            raise ValidationFailed.one("spec", f"“{spec.name}” has no published version yet; publish it first")
        return version
    version = spec.versions.select_related("spec").filter(number=number).first()
    if version is None:
        raise ValidationFailed.one("version", f"“{spec.name}” has no version {number}")
    return version


class CampaignListCreateApi(APIView):
    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else [IsAnyRole()]

    @extend_schema(operation_id="campaigns_list", summary="Campaigns you can see", responses=CampaignOut(many=True))
    def get(self, request: Request) -> Response:
        return Response([campaign_out(c) for c in selectors.campaign_list(user=request.user)])

    @extend_schema(summary="Create a campaign on a published spec version", request=CampaignCreateIn,
                   responses={201: CampaignOut})
    def post(self, request: Request) -> Response:
        body = body_parse(CampaignCreateIn, request.data)
        version = _published_version(request.user, body.pop("spec"), body.pop("version", None))
        campaign = services.campaign_create(
            user=request.user, name=body["name"], spec_version=version, guidelines=body["guidelines"] or "",
            overlap=body["overlap"], pairing=body["pairing"], category_weights=body.get("category_weights"),
            gold_share=body["gold_share"], assignment_timeout_seconds=body["assignment_timeout_seconds"],
        )
        return Response(campaign_out(campaign), status=201)


class CampaignDetailApi(APIView):
    permission_classes = [IsAnyRole]

    @extend_schema(summary="A campaign with its progress", responses=CampaignDetailOut)
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        return Response(campaign_out(campaign, progress=True))


class CampaignItemsApi(APIView):
    permission_classes = [IsAdmin]
    parser_classes = [RawUploadParser]

    @extend_schema(
        summary="Import items (atomic)",
        description="JSONL (`application/x-ndjson`), HH-RLHF dialogues (`?format=hh`) or CSV (`text/csv`). "
        "A bad line answers 400 `{\"line\", \"error\"}` and nothing is saved; repeated content is counted as duplicates. "
        "A body over IMPORT_ASYNC_BYTES (8 MiB by default) is imported by a job: 202 with its status, polled at "
        "`url` (GET /api/v1/imports/{id}/) until `succeeded` (its `result` is the 201 body) or `failed` (its `error`).",
        parameters=[OpenApiParameter("format", str, enum=["jsonl", "hh", "csv"], description="default: from the body"),
                    KEEP_EMPTY_PARAMETER],
        request={"application/x-ndjson": OpenApiTypes.STR, "text/csv": OpenApiTypes.STR},
        responses={201: inline_serializer("ImportResult", {"created_tasks": serializers.IntegerField(),
                                                           "created_items": serializers.IntegerField(),
                                                           "duplicates": serializers.IntegerField()}),
                   202: ImportJobSerializer},
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        upload = _upload(request)
        try:
            fmt = request.query_params.get("format")
            if not fmt:
                with open(import_jobs.upload_path(upload.path), "rb") as source:
                    fmt = "csv" if "csv" in (request.content_type or "") else detect_format_file(source)
            if fmt not in FORMATS:
                raise ValidationFailed.one("format", f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
            options = {"format": fmt, "keep_empty": _keep_empty(request)}
        except BaseException:
            import_jobs.upload_discard(upload.path)
            raise
        return _imported(request, upload, kind=ImportJob.ITEMS, options=options, campaign=campaign,
                         answer=lambda result: result.as_dict())


class CampaignRatersIn(Body):
    usernames = List(child=Text(max_length=150), allow_empty=False, message="give a list of usernames")


class CampaignRatersApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(summary="Assign raters", request=CampaignRatersIn,
                   responses=inline_serializer("CampaignRaters", {"raters": serializers.ListField(child=serializers.CharField())}))
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        usernames = body_parse(CampaignRatersIn, request.data)["usernames"]
        return Response({"raters": services.campaign_raters_add(campaign=campaign, usernames=usernames)})


def assignment_out(assignment: Assignment) -> dict[str, Any]:
    task = assignment.task
    responses = task.item.responses
    a_index, b_index = (task.y_index, task.x_index) if assignment.swapped else (task.x_index, task.y_index)
    return {
        "assignment": assignment.pk,
        "task": task.pk,
        "prompt": task.item.prompt,
        "a": {"response": a_index, "text": responses[a_index]["text"]},
        "b": {"response": b_index, "text": responses[b_index]["text"]},
        "expires_at": assignment.expires_at,
    }


class NextTaskApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(summary="The next task for you (204 when none is left)", responses={200: OpenApiTypes.OBJECT, 204: None})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_for_rater(user=request.user, campaign_id=campaign_id)
        assignment = services.next_task_assign(campaign=campaign, rater=request.user)
        if assignment is None:
            return Response(status=204)
        return Response(assignment_out(assignment))


class SideKeys(Body):
    not_object_message = 'must be {"a": [keys], "b": [keys]}'
    a = List(child=Text(), required=False, allow_null=True, message="must be a list of category keys")
    b = List(child=Text(), required=False, allow_null=True, message="must be a list of category keys")


class SideIndexes(Body):
    not_object_message = 'must be {"a": index, "b": index}'
    a = Integer(min_value=0, required=False, message="must be an index from 0, got {value!r}")
    b = Integer(min_value=0, required=False, message="must be an index from 0, got {value!r}")


class JudgmentIn(Body):
    """A judgment of the replies as shown (A, B); the keys and index ranges come from the campaign's spec version,
    checked on submission (every bad field named)."""

    preference = Integer(min_value=-2, max_value=2, help_text="negative: A better; positive: B better",
                         message="must be an integer from -2 (A much better) to 2 (B much better), got {value!r}")
    categories = SideKeys(required=False, allow_null=True, help_text="category keys that apply to each reply")
    severity = SideIndexes(required=False, allow_null=True, help_text="an index into the rubric's severity scale")
    axes = Dict(child=SideIndexes(), required=False, allow_null=True,
                help_text='per rubric axis: {"helpful": {"a": index, "b": index}, ...}',
                message='must be {"<axis>": {"a": index, "b": index}}')
    rationale = Text(required=False, allow_blank=True, allow_null=True, max_length=10_000,
                     message="must be text of at most 10000 characters")
    seconds = Number(required=False, allow_null=True, min_value=0, max_value=86400,
                     message="must be a number of seconds between 0 and 86400")


def judgment_out(judgment: Judgment) -> dict[str, Any]:
    return {
        "id": judgment.pk, "assignment": judgment.assignment_id, "task": judgment.task_id,
        "campaign": judgment.campaign_id, "rater": judgment.rater.username,
        "preference": judgment.preference, "categories": judgment.categories, "severity": judgment.severity,
        "axes": judgment.axes, "rationale": judgment.rationale, "seconds": judgment.seconds,
        "canonical": {"preference": judgment.preference_xy, "categories": {"x": judgment.categories_x, "y": judgment.categories_y},
                      "severity": {"x": judgment.severity_x, "y": judgment.severity_y}, "axes": judgment.axes_xy},
        "created_at": judgment.created_at,
    }


class JudgmentSubmitApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(summary="Judge your assignment (once)", request=JudgmentIn, responses={201: inline_serializer(
        "JudgmentCreated", {"id": serializers.IntegerField(), "assignment": serializers.IntegerField(),
                            "task": serializers.IntegerField(), "preference": serializers.IntegerField(),
                            "canonical_preference": serializers.IntegerField()})})
    def post(self, request: Request, assignment_id: int) -> Response:
        body = body_parse(JudgmentIn, request.data)
        judgment = services.judgment_submit(assignment_id=assignment_id, rater=request.user, data=body)
        return Response({"id": judgment.pk, "assignment": judgment.assignment_id, "task": judgment.task_id,
                         "preference": judgment.preference, "canonical_preference": judgment.preference_xy}, status=201)


class SkipIn(Body):
    reason = Text(required=False, allow_blank=True, allow_null=True, max_length=500,
                  message="must be text of at most 500 characters")


class AssignmentSkipApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(summary="Skip your assignment", request=SkipIn, responses=inline_serializer(
        "Skipped", {"assignment": serializers.IntegerField(), "status": serializers.CharField()}))
    def post(self, request: Request, assignment_id: int) -> Response:
        reason = body_parse(SkipIn, request.data).get("reason") or ""
        assignment = services.assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason)
        return Response({"assignment": assignment.pk, "status": assignment.status})


class JudgmentListApi(APIView):
    permission_classes = [IsAnyRole]

    @extend_schema(operation_id="judgments_list", summary="Judgments (raters: their own only)",
                   parameters=[OpenApiParameter("campaign", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        campaign = request.query_params.get("campaign")
        if campaign is not None and not campaign.isdigit():
            raise ValidationFailed.one("campaign", f"must be a campaign id (a whole number), got {campaign!r}")
        qs = selectors.judgment_list(user=request.user, campaign_id=campaign)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([judgment_out(j) for j in page])


class JudgmentDetailApi(APIView):
    permission_classes = [IsAnyRole]

    @extend_schema(summary="One judgment (raters: their own only)", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, judgment_id: int) -> Response:
        try:
            judgment = selectors.judgment_list(user=request.user).get(pk=judgment_id)
        except (Judgment.DoesNotExist, ValueError):
            raise Http404("No such judgment.") from None
        return Response(judgment_out(judgment))


class AgreementApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Krippendorff's alpha per field, category and rater; the disagreement queue",
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        return Response(selectors.campaign_agreement(campaign=campaign))


class AdjudicationIn(Body):
    """Canonical terms (x, y as imported); category keys and severity indexes are checked against the spec version."""

    preference = Integer(min_value=-2, max_value=2,
                         message="must be an integer from -2 (x much better) to 2 (y much better)")
    categories_x = List(child=Text(), required=False, allow_null=True,
                        message="must be a list of the spec version's category keys")
    categories_y = List(child=Text(), required=False, allow_null=True,
                        message="must be a list of the spec version's category keys")
    severity_x = Integer(min_value=0, required=False, message="must be a severity index (0 or more), got {value!r}")
    severity_y = Integer(min_value=0, required=False, message="must be a severity index (0 or more), got {value!r}")
    note = Text(required=False, allow_blank=True, allow_null=True, message="must be text")


class AdjudicationApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Adjudicate a task (canonical x/y terms; overrides the consensus in exports)",
                   request=AdjudicationIn, responses={201: inline_serializer("Adjudicated", {
                       "task": serializers.IntegerField(), "preference": serializers.IntegerField(),
                       "decided_by": serializers.CharField()})})
    def post(self, request: Request, task_id: int) -> Response:
        body = body_parse(AdjudicationIn, request.data)
        task = selectors.task_get(user=request.user, task_id=task_id)
        adjudication = services.adjudication_save(task=task, user=request.user, data=body)
        return Response({"task": task.pk, "preference": adjudication.preference_xy,
                         "decided_by": request.user.username}, status=201)


def export_out(export: ExportSnapshot) -> dict[str, Any]:
    return {
        "id": export.pk, "source": export.source, "campaign": export.campaign_id, "name": export.name,
        "n_pairs": export.n_pairs, "n_ties": export.n_ties, "sha256": export.sha256, "size_bytes": export.size_bytes,
        "filters": export.filters, "created_at": export.created_at,
        "created_by": export.created_by.username, "download": f"/api/v1/exports/{export.pk}/pairs.jsonl",
    }


class ExportOut(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    campaign = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    n_pairs = serializers.IntegerField()
    n_ties = serializers.IntegerField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    filters = serializers.DictField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    download = serializers.CharField()


class ExportIn(Body):
    """Filters for the consensus pairs; category keys are checked against the campaign's spec version."""

    not_object_message = "send a JSON object of filters"
    aggregation = Choice(list(AGGREGATIONS), required=False, message=f"must be one of {', '.join(AGGREGATIONS)}")
    min_agreement = Number(min_value=0, max_value=1, required=False, message="must be a share between 0 and 1")
    min_judgments = Integer(min_value=1, required=False, message="must be a whole number of at least 1")
    categories = List(child=Text(), required=False, allow_null=True,
                      message="must be a list of the spec version's category keys")
    harmful_threshold = Number(min_value=0, required=False, message="must be a severity index (0 or more)")


class CampaignExportsApi(APIView):
    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else [IsPolicyOrAdmin()]

    @extend_schema(summary="Exports of a campaign", responses=ExportOut(many=True))
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        return Response([export_out(e) for e in selectors.export_list(user=request.user, campaign=campaign)])

    @extend_schema(summary="Snapshot the consensus as preference pairs", request=ExportIn, responses={201: ExportOut})
    def post(self, request: Request, campaign_id: int) -> Response:
        filters = body_parse(ExportIn, request.data if request.data is not None else {})
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        export = services.export_snapshot_create(campaign=campaign, user=request.user, filters=filters)
        return Response(export_out(export), status=201)


class ExportDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="One export snapshot", responses=ExportOut)
    def get(self, request: Request, export_id: int) -> Response:
        return Response(export_out(selectors.export_get(user=request.user, export_id=export_id)))


class ExportPairsApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="The pairs, streamed as JSON lines", responses={(200, "application/x-ndjson"): OpenApiTypes.STR})
    def get(self, request: Request, export_id: int) -> FileResponse:
        export = selectors.export_get(user=request.user, export_id=export_id)
        path = Path(settings.MEDIA_ROOT) / export.path
        if not path.exists():
            raise Http404("The export file is missing from storage.")
        response = FileResponse(open(path, "rb"), content_type="application/x-ndjson",
                                as_attachment=request.query_params.get("download") in ("1", "true"),
                                filename=f"export-{export.pk}-pairs.jsonl")
        response["X-Content-SHA256"] = export.sha256
        return response


class ExportImportApi(APIView):
    """Bring your own pairs: a TRL or HH-RLHF JSONL body becomes a read-only snapshot."""

    permission_classes = [IsAdmin]
    parser_classes = [RawUploadParser]

    @extend_schema(summary="Import an existing preference dataset as a read-only snapshot",
                   description="A body over IMPORT_ASYNC_BYTES is imported by a job: 202 with its status (see the items import).",
                   parameters=[OpenApiParameter("format", str, enum=["trl", "hh"], required=True),
                               OpenApiParameter("name", str), KEEP_EMPTY_PARAMETER],
                   request={"application/x-ndjson": OpenApiTypes.STR},
                   responses={201: OpenApiTypes.OBJECT, 202: ImportJobSerializer})
    def post(self, request: Request) -> Response:
        from .pair_imports import pair_import_options

        upload = _upload(request)
        try:
            options = {**pair_import_options(fmt=request.query_params.get("format", ""),
                                             name=request.query_params.get("name", "")),
                       "keep_empty": _keep_empty(request), "field": "body"}
        except BaseException:
            import_jobs.upload_discard(upload.path)
            raise
        return _imported(request, upload, kind=ImportJob.PAIRS, options=options, campaign=None, answer=export_out)


class ImportJobApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(summary="A large import's status and progress (your own imports only)",
                   responses={200: ImportJobSerializer})
    def get(self, request: Request, job_id: int) -> Response:
        return Response(import_jobs.import_job_out(import_jobs.import_job_get(user=request.user, job_id=job_id)))


class ExportListApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(operation_id="exports_list", responses=ExportOut(many=True),
                   summary="Every export snapshot you can use (campaign exports and imported datasets)")
    def get(self, request: Request) -> Response:
        return Response([export_out(e) for e in selectors.export_list(user=request.user)[:1000]])
