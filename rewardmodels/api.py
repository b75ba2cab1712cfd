"""REST API for the model registry and scoring."""

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from specloop.roles import IsPolicyOrAdmin
from specloop.serializers import Body, List, Text, body_parse

from . import selectors, services
from .models import RewardModel


def model_out(model: RewardModel) -> dict[str, Any]:
    return {
        "id": model.pk, "name": model.name, "kind": model.kind, "job": model.job_id, "backbone": model.backbone,
        "metrics": model.metrics, "config": model.config,
        "exports": [{"id": e.pk, "sha256": e.sha256, "name": e.name, "source": e.source} for e in model.exports.all()],
        "spec_version": ({"spec": model.spec_version.spec_id, "version": model.spec_version.number,
                          "label": str(model.spec_version)} if model.spec_version_id else None),
        "campaign": model.campaign_id, "size_bytes": model.size_bytes,
        "created_by": model.created_by.username, "created_at": model.created_at,
    }


class RewardModelOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField(help_text="reward or cost")
    job = serializers.IntegerField()
    backbone = serializers.CharField()
    metrics = serializers.DictField(help_text="held-out metrics")
    config = serializers.DictField(help_text="the training config")
    exports = inline_serializer("RewardModelExport", {
        "id": serializers.IntegerField(), "sha256": serializers.CharField(), "name": serializers.CharField(),
        "source": serializers.CharField()}, many=True)
    spec_version = inline_serializer("RewardModelSpecVersion", {
        "spec": serializers.IntegerField(), "version": serializers.IntegerField(), "label": serializers.CharField()},
        allow_null=True)
    campaign = serializers.IntegerField(allow_null=True)
    size_bytes = serializers.IntegerField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()


class RewardModelListApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(operation_id="reward_models_list", summary="Registered reward and cost models, newest first",
                   responses=RewardModelOut(many=True))
    def get(self, request: Request) -> Response:
        return Response([model_out(m) for m in selectors.reward_model_list(user=request.user)[:500]])


class RewardModelDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="A model with its metrics and provenance", responses=RewardModelOut)
    def get(self, request: Request, model_id: int) -> Response:
        return Response(model_out(selectors.reward_model_get(user=request.user, model_id=model_id)))


_TEXT_ERRORS = {"required": "must be a string", "invalid": "must be a string", "null": "must be a string",
                "max_length": f"longer than {services.MAX_TEXT_CHARS} characters"}


class ScoreItemIn(Body):
    not_object_message = "must be an object with prompt and response"
    unknown_keys_at_object = True
    prompt = Text(allow_blank=True, max_length=services.MAX_TEXT_CHARS, error_messages=_TEXT_ERRORS)
    response = Text(allow_blank=True, max_length=services.MAX_TEXT_CHARS, error_messages=_TEXT_ERRORS)


class ScoreIn(Body):
    items = List(child=ScoreItemIn(), allow_empty=False, max_length=services.MAX_SCORE_ITEMS, error_messages={
        # DRF formats these messages: braces are doubled
        "required": 'send {{"items": [{{"prompt": "...", "response": "..."}}, ...]}}',
        "not_a_list": 'send {{"items": [{{"prompt": "...", "response": "..."}}, ...]}}',
        "null": 'send {{"items": [{{"prompt": "...", "response": "..."}}, ...]}}',
        "empty": "must hold at least one {{prompt, response}}",
        "max_length": f"at most {services.MAX_SCORE_ITEMS} per request; send the rest in more requests"})


class RewardModelScoreApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Score (prompt, response) pairs; the scores come back in the same order",
                   request=ScoreIn, responses=inline_serializer("Scores", {
                       "model": serializers.IntegerField(), "kind": serializers.CharField(),
                       "scores": serializers.ListField(child=serializers.FloatField())}))
    def post(self, request: Request, model_id: int) -> Response:
        body = body_parse(ScoreIn, request.data)
        model = selectors.reward_model_get(user=request.user, model_id=model_id)
        try:
            scores = services.reward_model_score(model=model, data=body)
        except FileNotFoundError:  # the checkpoint folder was removed or never copied to this machine
            raise Http404("The model's checkpoint is missing from storage.") from None
        return Response({"model": model.pk, "kind": model.kind, "scores": scores})
