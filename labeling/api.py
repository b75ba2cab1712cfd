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
from taxonomy import selectors as spec_selectors
from taxonomy.models import SpecVersion

from . import import_jobs, selectors, services
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


CampaignCreateSerializer = inline_serializer("CampaignCreate", {
    "name": serializers.CharField(), "spec": serializers.IntegerField(),
    "version": serializers.IntegerField(required=False, help_text="default: the latest published version"),
    "overlap": serializers.IntegerField(required=False, default=3), "guidelines": serializers.CharField(required=False),
    "pairing": serializers.ChoiceField(["all_pairs", "adjacent"], required=False),
    "category_weights": serializers.DictField(child=serializers.FloatField(), required=False),
    "gold_share": serializers.FloatField(required=False),
    "assignment_timeout_seconds": serializers.IntegerField(required=False),
})


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

    @extend_schema(operation_id="campaigns_list", summary="Campaigns you can see", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response([campaign_out(c) for c in selectors.campaign_list(user=request.user)])

    @extend_schema(summary="Create a campaign on a published spec version", request=CampaignCreateSerializer,
                   responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        if "spec" not in data:
            raise ValidationFailed.one("spec", "is required: the id of a spec with a published version")
        version = _published_version(request.user, data["spec"], data.get("version"))
        campaign = services.campaign_create(
            user=request.user, name=data.get("name", ""), spec_version=version,
            guidelines=data.get("guidelines", ""), overlap=data.get("overlap", 3),
            pairing=data.get("pairing", Campaign.ALL_PAIRS), category_weights=data.get("category_weights"),
            gold_share=data.get("gold_share", 0.0),
            assignment_timeout_seconds=data.get("assignment_timeout_seconds", 1800),
        )
        return Response(campaign_out(campaign), status=201)


class CampaignDetailApi(APIView):
    permission_classes = [IsAnyRole]

    @extend_schema(summary="A campaign with its progress", responses=OpenApiTypes.OBJECT)
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

    @extend_schema(summary="Assign raters", request=inline_serializer(
        "CampaignRaters", {"usernames": serializers.ListField(child=serializers.CharField())}), responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        usernames = request.data.get("usernames") if isinstance(request.data, dict) else None
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


JudgmentSerializer = inline_serializer("JudgmentIn", {
    "preference": serializers.IntegerField(min_value=-2, max_value=2, help_text="negative: A better; positive: B better"),
    "categories": serializers.JSONField(required=False, help_text='{"a": [keys], "b": [keys]}'),
    "severity": serializers.JSONField(required=False, help_text='{"a": index, "b": index}'),
    "axes": serializers.JSONField(required=False, help_text='{"helpful": {"a": index, "b": index}, ...}'),
    "rationale": serializers.CharField(required=False), "seconds": serializers.FloatField(required=False),
})


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

    @extend_schema(summary="Judge your assignment (once)", request=JudgmentSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, assignment_id: int) -> Response:
        judgment = services.judgment_submit(assignment_id=assignment_id, rater=request.user, data=request.data)
        return Response({"id": judgment.pk, "assignment": judgment.assignment_id, "task": judgment.task_id,
                         "preference": judgment.preference, "canonical_preference": judgment.preference_xy}, status=201)


class AssignmentSkipApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(summary="Skip your assignment", request=inline_serializer(
        "SkipIn", {"reason": serializers.CharField(required=False)}), responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, assignment_id: int) -> Response:
        reason = request.data.get("reason", "") if isinstance(request.data, dict) else ""
        assignment = services.assignment_skip(assignment_id=assignment_id, rater=request.user, reason=reason)
        return Response({"assignment": assignment.pk, "status": assignment.status})


class JudgmentListApi(APIView):
    permission_classes = [IsAnyRole]

    @extend_schema(operation_id="judgments_list", summary="Judgments (raters: their own only)",
                   parameters=[OpenApiParameter("campaign", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        qs = selectors.judgment_list(user=request.user, campaign_id=request.query_params.get("campaign"))
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


class AdjudicationApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Adjudicate a task (canonical x/y terms; overrides the consensus in exports)",
                   request=inline_serializer("AdjudicationIn", {
                       "preference": serializers.IntegerField(min_value=-2, max_value=2),
                       "categories_x": serializers.ListField(child=serializers.CharField(), required=False),
                       "categories_y": serializers.ListField(child=serializers.CharField(), required=False),
                       "severity_x": serializers.IntegerField(required=False),
                       "severity_y": serializers.IntegerField(required=False),
                       "note": serializers.CharField(required=False)}),
                   responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, task_id: int) -> Response:
        task = selectors.task_get(user=request.user, task_id=task_id)
        adjudication = services.adjudication_save(task=task, user=request.user, data=request.data)
        return Response({"task": task.pk, "preference": adjudication.preference_xy,
                         "decided_by": request.user.username}, status=201)


def export_out(export: ExportSnapshot) -> dict[str, Any]:
    return {
        "id": export.pk, "source": export.source, "campaign": export.campaign_id, "name": export.name,
        "n_pairs": export.n_pairs, "n_ties": export.n_ties, "sha256": export.sha256, "size_bytes": export.size_bytes,
        "filters": export.filters, "created_at": export.created_at,
        "created_by": export.created_by.username, "download": f"/api/v1/exports/{export.pk}/pairs.jsonl",
    }


class CampaignExportsApi(APIView):
    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else [IsPolicyOrAdmin()]

    @extend_schema(summary="Exports of a campaign", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        return Response([export_out(e) for e in selectors.export_list(user=request.user, campaign=campaign)])

    @extend_schema(summary="Snapshot the consensus as preference pairs", request=inline_serializer("ExportIn", {
        "aggregation": serializers.ChoiceField(["majority", "mean", "reliability_weighted"], required=False),
        "min_agreement": serializers.FloatField(required=False), "min_judgments": serializers.IntegerField(required=False),
        "categories": serializers.ListField(child=serializers.CharField(), required=False),
        "harmful_threshold": serializers.FloatField(required=False)}), responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        export = services.export_snapshot_create(campaign=campaign, user=request.user, filters=request.data)
        return Response(export_out(export), status=201)


class ExportDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="One export snapshot", responses=OpenApiTypes.OBJECT)
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

    @extend_schema(operation_id="exports_list", responses=OpenApiTypes.OBJECT,
                   summary="Every export snapshot you can use (campaign exports and imported datasets)")
    def get(self, request: Request) -> Response:
        return Response([export_out(e) for e in selectors.export_list(user=request.user)[:1000]])
