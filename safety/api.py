"""REST API for prompt sets, guards, the guard's scoring endpoint and its decision log (SPEC section 6)."""

from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import import_jobs as upload_jobs
from labeling import selectors as labeling_selectors
from labeling.api import RawUploadParser, SpooledUpload, _published_version
from rewardmodels import selectors as model_selectors
from rewardmodels.models import RewardModel
from specloop.errors import ValidationFailed
from specloop.roles import IsAdmin, IsPolicyOrAdmin
from specloop.serializers import Body, Boolean, Integer, List, Text, body_parse

from . import import_jobs, selectors, services
from .decisions import DECISIONS
from .models import Guard, GuardDecision, PromptSet
from .prompt_imports import FORMATS, import_options_parse

# --- prompt sets ----------------------------------------------------------------------------------


def prompt_set_out(prompt_set: PromptSet) -> dict[str, Any]:
    return {
        "id": prompt_set.pk, "name": prompt_set.name, "spec": prompt_set.spec_version.spec_id,
        "version": prompt_set.spec_version.number, "source": prompt_set.source, "n_prompts": prompt_set.n_prompts,
        "sha256": prompt_set.sha256, "by_category": prompt_set.by_category, "by_label": prompt_set.by_label,
        "unmapped": prompt_set.unmapped, "options": prompt_set.options, "created_by": prompt_set.created_by.username,
        "created_at": prompt_set.created_at, "download": f"/api/v1/prompt-sets/{prompt_set.pk}/prompts.jsonl",
    }


class PromptSetOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    spec = serializers.IntegerField()
    version = serializers.IntegerField()
    source = serializers.CharField(help_text="jsonl, csv or spec_examples")
    n_prompts = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="of the canonical prompts.jsonl")
    by_category = serializers.DictField(child=serializers.IntegerField(), help_text="prompts per spec category key")
    by_label = serializers.DictField(child=serializers.IntegerField(), help_text="safe, unsafe, unknown")
    unmapped = serializers.DictField(child=serializers.IntegerField(),
                                     help_text='{"<taxonomy>:<code>": prompts} of public codes that mapped to no category')
    options = serializers.DictField(help_text="how the file was read: format, column mapping, taxonomy, label")
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    download = serializers.CharField()


PromptSetImportOut = inline_serializer("PromptSetImport", {
    "id": serializers.IntegerField(), "status": serializers.ChoiceField(["queued", "running", "succeeded", "failed"]),
    "progress": serializers.FloatField(help_text="share of the file read, 0..1"),
    "lines": serializers.IntegerField(), "name": serializers.CharField(), "spec": serializers.IntegerField(),
    "version": serializers.IntegerField(), "format": serializers.CharField(allow_null=True),
    "size_bytes": serializers.IntegerField(), "created_at": serializers.DateTimeField(),
    "finished_at": serializers.DateTimeField(allow_null=True), "prompt_set": serializers.IntegerField(allow_null=True),
    "url": serializers.CharField(),
    "error": serializers.JSONField(required=False, help_text='when failed: {"error", "detail", "line"?}'),
})
IMPORT_PARAMETERS = [
    OpenApiParameter("name", str, required=True, description="the set's name"),
    OpenApiParameter("spec", int, required=True, description="the spec id (its version's crosswalk maps the codes)"),
    OpenApiParameter("version", int, description="default: the latest published version"),
    OpenApiParameter("format", str, enum=list(FORMATS), description="default: csv for a text/csv body, else jsonl"),
    OpenApiParameter("label", str, enum=["safe", "unsafe", "unknown"],
                     description="the label of every prompt that does not carry one (e.g. unsafe for AdvBench)"),
    OpenApiParameter("prompt_column", str, description="CSV: the prompt's column (default prompt)"),
    OpenApiParameter("label_column", str, description="CSV: a column of safe / unsafe labels"),
    OpenApiParameter("response_column", str, many=True, explode=True, description=(
        "CSV: a reply column; repeat it for several (each reply becomes its own prompt row). Beside "
        "<prefix>_response, the <prefix>_harmful (0/1) and <prefix>_action (Do-Not-Answer's 0-5) columns label it")),
    OpenApiParameter("category_column", str, description="CSV: a column of spec category keys (comma-separated)"),
    OpenApiParameter("code_column", str, description="CSV: a column of public taxonomy codes (needs taxonomy)"),
    OpenApiParameter("taxonomy", str, description="the public taxonomy of code_column: ailuminate, harmbench, do_not_answer, ..."),
]
PromptSetImportResponses = {201: PromptSetOut, 202: PromptSetImportOut}


def _int_parameter(request: Request, name: str, *, required: bool) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed.one(name, f"is required: ?{name}=ID")
        return None
    if not value.isdigit():
        raise ValidationFailed.one(name, f"must be a whole number, got {value!r}")
    return int(value)


def _prompt_set_options(request: Request) -> tuple[str, Any, dict[str, Any]]:
    params = request.query_params
    fmt = params.get("format") or ("csv" if "csv" in (request.content_type or "") else "jsonl")
    options = import_options_parse(fmt=fmt, values=params, response_columns=params.getlist("response_column"))
    name = params.get("name", "")
    services._checked_name(name)
    spec = _int_parameter(request, "spec", required=True)
    number = _int_parameter(request, "version", required=False)
    version = _published_version(request.user, spec, number)
    return name, version, options.as_dict()


class PromptSetListCreateApi(APIView):
    parser_classes = [RawUploadParser]

    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else [IsPolicyOrAdmin()]

    @extend_schema(operation_id="prompt_sets_list", summary="Prompt sets you can see, newest first",
                   responses=PromptSetOut(many=True))
    def get(self, request: Request) -> Response:
        return Response([prompt_set_out(p) for p in selectors.prompt_set_list(user=request.user)[:1000]])

    @extend_schema(
        summary="Import a prompt set (atomic)",
        description="JSONL lines `{\"prompt\", \"label\"?, \"category\"? | \"categories\"?, \"codes\"?: "
        "{\"ailuminate\": \"vcr\"}, \"response\"?, \"response_harmful\"?, \"response_refusal\"?, \"meta\"?}`, or CSV "
        "with the column mapping in the query. Public codes map to spec categories through the version's crosswalk; "
        "`unmapped` counts the codes that mapped to none. A bad line answers 400 `{\"line\", \"error\"}` and nothing "
        "is saved. A body over IMPORT_ASYNC_BYTES is imported by a job: 202 with its status, polled at `url`.",
        parameters=IMPORT_PARAMETERS,
        request={"application/x-ndjson": OpenApiTypes.STR, "text/csv": OpenApiTypes.STR},
        responses=PromptSetImportResponses,
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, SpooledUpload) or not data.size:
            if isinstance(data, SpooledUpload):
                upload_jobs.upload_discard(data.path)
            raise ValidationFailed.one("body", "the body is empty: send the prompt file (JSONL or CSV)")
        handed = False
        try:
            name, version, options = _prompt_set_options(request)
            if upload_jobs.runs_as_job(data.size):
                job = import_jobs.prompt_set_import_job_create(user=request.user, name=name, spec_version=version,
                                                               upload=data.path, size=data.size, options=options)
                handed = True
                job.refresh_from_db()
                out = import_jobs.prompt_set_import_out(job)
                return Response(out, status=202, headers={"Location": out["url"]})
            prompt_set = import_jobs.prompt_set_import_run_upload(user=request.user, name=name, spec_version=version,
                                                                  upload=data.path, options=options)
            return Response(prompt_set_out(prompt_set), status=201)
        finally:
            if not handed:
                upload_jobs.upload_discard(data.path)


class PromptSetFromSpecIn(Body):
    spec = Integer(message="is required: the id of a spec with a published version")
    version = Integer(required=False, allow_null=True, message="must be a version number, got {value!r}",
                      help_text="default: the latest published version")
    name = Text(required=False, allow_null=True, max_length=200, message="must be text of at most 200 characters")


class PromptSetFromSpecApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(summary="The spec version's own examples as a prompt set (allowed → safe, disallowed → unsafe, "
                           "borderline → unknown)", request=PromptSetFromSpecIn, responses={201: PromptSetOut})
    def post(self, request: Request) -> Response:
        body = body_parse(PromptSetFromSpecIn, request.data)
        version = _published_version(request.user, body["spec"], body.get("version"))
        prompt_set = services.prompt_set_from_spec_examples(user=request.user, spec_version=version,
                                                            name=body.get("name") or None)
        return Response(prompt_set_out(prompt_set), status=201)


class PromptSetDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="One prompt set with its counts per category and label", responses=PromptSetOut)
    def get(self, request: Request, prompt_set_id: int) -> Response:
        return Response(prompt_set_out(selectors.prompt_set_get(user=request.user, prompt_set_id=prompt_set_id)))


def prompt_set_stream(prompt_set: PromptSet):
    for prompt in selectors.prompt_set_prompts(prompt_set=prompt_set).iterator(chunk_size=2000):
        yield services.prompt_line(prompt)


class PromptSetPromptsApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="The prompts as JSON lines, streamed (their sha256 is the set's)",
                   responses={(200, "application/x-ndjson"): OpenApiTypes.STR})
    def get(self, request: Request, prompt_set_id: int) -> StreamingHttpResponse:
        prompt_set = selectors.prompt_set_get(user=request.user, prompt_set_id=prompt_set_id)
        response = StreamingHttpResponse(prompt_set_stream(prompt_set), content_type="application/x-ndjson")
        response["X-Content-SHA256"] = prompt_set.sha256
        if request.query_params.get("download") in ("1", "true"):
            response["Content-Disposition"] = f'attachment; filename="prompt-set-{prompt_set.pk}.jsonl"'
        return response


class PromptSetImportApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(summary="A large prompt-set import's status and progress (your own imports only)",
                   responses={200: PromptSetImportOut})
    def get(self, request: Request, import_id: int) -> Response:
        job = selectors.prompt_set_import_get(user=request.user, job_id=import_id)
        return Response(import_jobs.prompt_set_import_out(job))


# --- guards ---------------------------------------------------------------------------------------


def guard_out(guard: Guard) -> dict[str, Any]:
    return {
        "id": guard.pk, "name": guard.name, "spec": guard.spec_version.spec_id, "version": guard.spec_version.number,
        "safety_classifier": guard.safety_classifier_id, "cost_model": guard.cost_model_id,
        "log_decisions": guard.log_decisions, "created_by": guard.created_by.username, "created_at": guard.created_at,
    }


class GuardOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    spec = serializers.IntegerField()
    version = serializers.IntegerField()
    safety_classifier = serializers.IntegerField()
    cost_model = serializers.IntegerField(allow_null=True)
    log_decisions = serializers.BooleanField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()


class GuardCreateIn(Body):
    name = Text(max_length=200, message="a guard needs a name of at most 200 characters")
    safety_classifier = Integer(message="is required: the id of a registered safety classifier")
    spec = Integer(required=False, allow_null=True, message="must be a spec id, got {value!r}",
                   help_text="default: the classifier's spec")
    version = Integer(required=False, allow_null=True, message="must be a version number, got {value!r}",
                      help_text="default: the latest published version of spec")
    cost_model = Integer(required=False, allow_null=True, message="must be the id of a registered cost model")
    log_decisions = Boolean(default=False, message="must be true or false")


def _registered(user, model_id: int | None, field: str) -> RewardModel | None:
    if model_id is None:
        return None
    try:
        return model_selectors.reward_model_get(user=user, model_id=model_id)
    except Http404:
        raise ValidationFailed.one(field, f"no registered model {model_id} that you can use") from None


class GuardListCreateApi(APIView):
    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "POST" else [IsPolicyOrAdmin()]

    @extend_schema(operation_id="guards_list", summary="Guards you can see, newest first", responses=GuardOut(many=True))
    def get(self, request: Request) -> Response:
        return Response([guard_out(g) for g in selectors.guard_list(user=request.user)[:500]])

    @extend_schema(summary="Create a guard: a published spec version served with a safety classifier",
                   request=GuardCreateIn, responses={201: GuardOut})
    def post(self, request: Request) -> Response:
        body = body_parse(GuardCreateIn, request.data)
        classifier = _registered(request.user, body["safety_classifier"], "safety_classifier")
        cost_model = _registered(request.user, body.get("cost_model"), "cost_model")
        version = None
        if body.get("spec") is not None:
            version = _published_version(request.user, body["spec"], body.get("version"))
        elif body.get("version") is not None:
            raise ValidationFailed.one("spec", "give spec with version")
        guard = services.guard_create(user=request.user, name=body["name"], safety_classifier=classifier,
                                      spec_version=version, cost_model=cost_model,
                                      log_decisions=body["log_decisions"])
        return Response(guard_out(guard), status=201)


class GuardDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="One guard", responses=GuardOut)
    def get(self, request: Request, guard_id: int) -> Response:
        return Response(guard_out(selectors.guard_get(user=request.user, guard_id=guard_id)))


_TEXT = {"required": "must be a string", "invalid": "must be a string", "null": "must be a string",
         "blank": "must not be empty", "max_length": f"longer than {services.MAX_GUARD_TEXT_CHARS} characters"}


class GuardItemIn(Body):
    not_object_message = "must be an object with prompt and (optionally) response"
    prompt = Text(max_length=services.MAX_GUARD_TEXT_CHARS, error_messages=_TEXT)
    response = Text(required=False, allow_null=True, allow_blank=True, max_length=services.MAX_GUARD_TEXT_CHARS,
                    error_messages={**_TEXT, "invalid": "must be a string or null"},
                    help_text="the reply to judge; leave it out to judge the prompt alone")


class GuardScoreIn(Body):
    """One item (``prompt``, ``response``?) or a batch (``items``), never both."""

    prompt = Text(required=False, max_length=services.MAX_GUARD_TEXT_CHARS, error_messages=_TEXT)
    response = Text(required=False, allow_null=True, allow_blank=True, max_length=services.MAX_GUARD_TEXT_CHARS,
                    error_messages={**_TEXT, "invalid": "must be a string or null"})
    items = List(child=GuardItemIn(), required=False, allow_empty=False, max_length=services.MAX_GUARD_ITEMS,
                 error_messages={
                     "not_a_list": 'send {{"items": [{{"prompt": "...", "response": "..."}}, ...]}}',
                     "null": 'send {{"items": [{{"prompt": "...", "response": "..."}}, ...]}}',
                     "empty": "must hold at least one {{prompt, response?}}",
                     "max_length": f"at most {services.MAX_GUARD_ITEMS} per request; send the rest in more requests"})
    guard = Integer(required=False, allow_null=True, message="must be a guard id, got {value!r}",
                    help_text="default: the newest guard you can use")

    def validate(self, attrs):
        if "items" in attrs and ("prompt" in attrs or "response" in attrs):
            raise serializers.ValidationError({"items": ["send either prompt (and response) or items, not both"]})
        if "items" not in attrs and "prompt" not in attrs:
            raise serializers.ValidationError({"prompt": ['is required: {"prompt", "response"?} or {"items": [...]}']})
        return attrs


CATEGORY_FIELDS = {
    "key": serializers.CharField(), "name": serializers.CharField(), "probability": serializers.FloatField(),
    "flagged": serializers.BooleanField(), "behavior": serializers.CharField(),
    "decision": serializers.ChoiceField(list(DECISIONS))}
RESULT_FIELDS = {
    "decision": serializers.ChoiceField(list(DECISIONS)),
    "prompt_harmful": inline_serializer("GuardPromptHarmful", {
        "probability": serializers.FloatField(), "harmful": serializers.BooleanField()}),
    "response_refusal": inline_serializer("GuardRefusal", {
        "label": serializers.CharField(allow_null=True),
        "probabilities": serializers.DictField(child=serializers.FloatField(), allow_null=True)}),
    "response_harmful": inline_serializer("GuardResponseHarmful", {
        "probability": serializers.FloatField(allow_null=True), "harmful": serializers.BooleanField(allow_null=True)}),
    "categories": inline_serializer("GuardCategory", CATEGORY_FIELDS, many=True),
    "notes": serializers.ListField(child=serializers.CharField()),
    "spec_version": inline_serializer("GuardSpecVersion", {"spec": serializers.IntegerField(),
                                                           "version": serializers.IntegerField()}),
    "guard": serializers.IntegerField(), "model": serializers.IntegerField(help_text="the safety classifier"),
    "cost": serializers.DictField(required=False, help_text="with a cost model: {model, score, harmful}"),
    "decision_id": serializers.IntegerField(required=False, help_text="when the guard logs its decisions"),
}


GuardResult = inline_serializer("GuardResult", RESULT_FIELDS)
GuardResultList = serializers.ListSerializer(child=GuardResult)


class GuardScoreApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(
        summary="Judge a (prompt, response) by a guard's spec: one item, or a batch of up to 256",
        description="`decision` is allow, allow_with_note, review or block, from the flagged categories' "
        "behaviours (see safety/decisions.py for the table); with no response the prompt is judged alone. "
        "A batch answers `{\"results\": [...]}` in the same order.",
        request=GuardScoreIn,
        responses={200: PolymorphicProxySerializer(
            component_name="GuardScoreAnswer", resource_type_field_name=None,
            serializers=[GuardResult, inline_serializer("GuardBatch", {"results": GuardResultList})])},
    )
    def post(self, request: Request) -> Response:
        body = body_parse(GuardScoreIn, request.data)
        guard = selectors.guard_for_scoring(user=request.user, guard_id=body.get("guard"))
        batch = "items" in body
        items = body["items"] if batch else [{"prompt": body["prompt"], "response": body.get("response")}]
        results = services.guard_score(guard=guard, items=items, user=request.user)
        return Response({"results": results} if batch else results[0])


def decision_out(decision: GuardDecision) -> dict[str, Any]:
    return {
        "id": decision.pk, "guard": decision.guard_id, "prompt": decision.prompt, "response": decision.response,
        "decision": decision.decision, "result": decision.result,
        "client": decision.client.username if decision.client_id else None, "created_at": decision.created_at,
        "sent_to_campaign": decision.sent_to_campaign_id, "sent_at": decision.sent_at,
    }


class GuardDecisionsApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(operation_id="guard_decisions_list", summary="The guard's decision log, newest first (paginated)",
                   parameters=[OpenApiParameter("decision", str, enum=list(DECISIONS)), OpenApiParameter("page", int)],
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, guard_id: int) -> Response:
        guard = selectors.guard_get(user=request.user, guard_id=guard_id)
        decision = request.query_params.get("decision") or None
        if decision is not None and decision not in DECISIONS:
            raise ValidationFailed.one("decision", f"must be one of {', '.join(DECISIONS)}")
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.guard_decision_list(guard=guard, decision=decision), request, view=self)
        return paginator.get_paginated_response([decision_out(d) for d in page])


class DecisionsSendIn(Body):
    decisions = List(child=Integer(min_value=1), allow_empty=False, max_length=1000,
                     message="give a list of 1 to 1000 decision ids from this guard's log")
    campaign = Integer(message="is required: the id of the labeling campaign to add the items to")


SendResult = inline_serializer("DecisionsSent", {
    "campaign": serializers.IntegerField(), "created_items": serializers.IntegerField(),
    "created_tasks": serializers.IntegerField(), "duplicates": serializers.IntegerField(),
    "sent": serializers.IntegerField(help_text="decisions that became part of an item"),
    "skipped": inline_serializer("DecisionsSkipped", {
        "prompt": serializers.CharField(), "decisions": serializers.ListField(child=serializers.IntegerField()),
        "reason": serializers.CharField()}, many=True)})


class GuardDecisionsSendApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Send logged decisions to a labeling campaign as new pairwise items (grouped by prompt)",
                   request=DecisionsSendIn, responses={200: SendResult})
    def post(self, request: Request, guard_id: int) -> Response:
        body = body_parse(DecisionsSendIn, request.data)
        guard = selectors.guard_get(user=request.user, guard_id=guard_id)
        try:
            campaign = labeling_selectors.campaign_get(user=request.user, campaign_id=body["campaign"])
        except Http404:
            raise ValidationFailed.one("campaign", f"no campaign {body['campaign']} that you can see") from None
        return Response(services.guard_decisions_send_to_campaign(
            user=request.user, guard=guard, decision_ids=body["decisions"], campaign=campaign))
