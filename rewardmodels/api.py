"""REST API for the model registry and scoring."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from specloop.roles import IsPolicyOrAdmin

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


class RewardModelListApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(operation_id="reward_models_list", summary="Registered reward and cost models, newest first",
                   responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response([model_out(m) for m in selectors.reward_model_list(user=request.user)[:500]])


class RewardModelDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="A model with its metrics and provenance", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, model_id: int) -> Response:
        return Response(model_out(selectors.reward_model_get(user=request.user, model_id=model_id)))


ScoreIn = inline_serializer("ScoreIn", {"items": serializers.ListField(child=inline_serializer(
    "ScoreItem", {"prompt": serializers.CharField(), "response": serializers.CharField()}))})


class RewardModelScoreApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Score (prompt, response) pairs; the scores come back in the same order",
                   request=ScoreIn, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, model_id: int) -> Response:
        model = selectors.reward_model_get(user=request.user, model_id=model_id)
        scores = services.reward_model_score(model=model, data=request.data)
        return Response({"model": model.pk, "kind": model.kind, "scores": scores})
