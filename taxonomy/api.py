"""REST API for safety specs: one view per operation, serializers beside it."""

from typing import Any

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from specloop.errors import ValidationFailed
from specloop.roles import IsPolicy, IsPolicyOrAdmin

from . import selectors, services
from .document import dump_json, dump_yaml, normalize_document, parse_yaml
from .models import Spec, SpecChange, SpecVersion

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class YAMLParser(BaseParser):
    """Reads a YAML body; errors name the line and column."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return {"__yaml__": parse_yaml(stream.read())}


YAML_PARSERS = [YAMLParser] + [
    type(f"YAMLParser{i}", (YAMLParser,), {"media_type": media_type}) for i, media_type in enumerate(YAML_TYPES[1:])
]


def _document_body(request: Request) -> tuple[Any, dict[str, Any]]:
    """``(document, other fields)`` from a JSON ``{"document": ...}`` body or a YAML document body."""
    data = request.data
    if isinstance(data, dict) and "__yaml__" in data:
        loaded = data["__yaml__"]
        if loaded is None:
            raise ValidationFailed.one("document", "the YAML body is empty")
        if isinstance(loaded, dict) and "document" in loaded:
            return loaded["document"], {k: v for k, v in loaded.items() if k != "document"}
        return loaded, {}
    if not isinstance(data, dict):
        raise ValidationFailed.one("body", "send JSON {\"name\": ..., \"document\": {...}} or a YAML document")
    if "document" not in data:
        raise ValidationFailed.one("document", "is required: the spec document (goals, categories, rubric, ...)")
    return data["document"], {k: v for k, v in data.items() if k != "document"}


def _user_ref(user) -> str | None:
    return user.username if user else None


def _version_summary(version: SpecVersion) -> dict[str, Any]:
    return {
        "version": version.number,
        "status": version.status,
        "n_categories": version.category_count,
        "created_at": version.created_at,
        "created_by": _user_ref(version.created_by),
        "updated_at": version.updated_at,
        "published_at": version.published_at,
        "published_by": _user_ref(version.published_by),
        "based_on": version.based_on.number if version.based_on_id and version.based_on else None,
    }


def _spec_detail(spec: Spec) -> dict[str, Any]:
    versions = selectors.spec_versions(spec=spec)
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "created_at": spec.created_at,
        "editors": sorted(u.username for u in spec.editors.all()),
        "latest_version": versions[-1].number,
        "versions": [_version_summary(v) for v in versions],
    }


SpecCreatedSerializer = inline_serializer(
    "SpecCreated", {"id": serializers.IntegerField(), "version": serializers.IntegerField(), "status": serializers.CharField()}
)
SpecCreateSerializer = inline_serializer(
    "SpecCreate",
    {"name": serializers.CharField(), "description": serializers.CharField(required=False), "document": serializers.JSONField()},
)


class SpecListCreateApi(APIView):
    parser_classes = [JSONParser, *YAML_PARSERS]

    def get_permissions(self):
        return [IsPolicy()] if self.request.method == "POST" else [IsPolicyOrAdmin()]

    @extend_schema(
        summary="List the specs you can see",
        responses=inline_serializer("SpecListItem", {"id": serializers.IntegerField(), "name": serializers.CharField(),
                                                      "latest_version": serializers.IntegerField()}, many=True),
    )
    def get(self, request: Request) -> Response:
        specs = selectors.spec_list(user=request.user)
        return Response(
            [{"id": s.id, "name": s.name, "description": s.description, "latest_version": s.latest_number,
              "n_versions": s.n_versions} for s in specs]
        )

    @extend_schema(
        summary="Create a spec (version 1, draft)",
        description="JSON `{\"name\", \"document\"}` or a YAML document (`Content-Type: application/yaml`, name "
        "in `?name=`). A bad document answers 400 naming each bad field; nothing is saved.",
        request={"application/json": SpecCreateSerializer, "application/yaml": OpenApiTypes.STR},
        parameters=[OpenApiParameter("name", str, description="spec name for a YAML body")],
        responses={201: SpecCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        document, fields = _document_body(request)
        name = fields.get("name") or request.query_params.get("name") or ""
        version = services.spec_create(
            user=request.user, name=str(name), document=document, description=str(fields.get("description") or "")
        )
        return Response({"id": version.spec_id, "version": version.number, "status": version.status}, status=201)


class SpecDetailApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="A spec with its versions", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, spec_id: int) -> Response:
        return Response(_spec_detail(selectors.spec_get(user=request.user, spec_id=spec_id)))


class SpecPublishApi(APIView):
    permission_classes = [IsPolicy]

    @extend_schema(summary="Publish the spec's draft (it becomes immutable)", request=None,
                   responses=inline_serializer("SpecPublished", {"version": serializers.IntegerField(),
                                                                 "status": serializers.CharField()}))
    def post(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        version = services.spec_publish(spec=spec, user=request.user)
        return Response({"version": version.number, "status": version.status})


class SpecVersionCreateApi(APIView):
    permission_classes = [IsPolicy]
    parser_classes = [JSONParser, *YAML_PARSERS]

    @extend_schema(
        summary="Start a new draft",
        description="A copy of the latest version, or the given document (JSON `{\"document\"}` or YAML).",
        request={"application/json": OpenApiTypes.OBJECT, "application/yaml": OpenApiTypes.STR},
        responses={201: SpecCreatedSerializer},
    )
    def post(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        document = None
        if request.body:
            document, _ = _document_body(request)
        version = services.spec_draft_create(spec=spec, user=request.user, document=document)
        return Response({"id": spec.id, "version": version.number, "status": version.status}, status=201)


class SpecVersionApi(APIView):
    parser_classes = [JSONParser, *YAML_PARSERS]

    def get_permissions(self):
        return [IsPolicy()] if self.request.method in ("PUT", "PATCH") else [IsPolicyOrAdmin()]

    @extend_schema(summary="One version with its document", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, spec_id: int, number: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        version = selectors.spec_version_get(spec=spec, number=number)
        return Response({"id": spec.id, **_version_summary(version), "document": normalize_document(version.document)})

    @extend_schema(
        summary="Replace a draft's document",
        description="Published versions are immutable: 409 with a message.",
        request={"application/json": OpenApiTypes.OBJECT, "application/yaml": OpenApiTypes.STR},
        responses=OpenApiTypes.OBJECT,
    )
    def put(self, request: Request, spec_id: int, number: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        version = selectors.spec_version_get(spec=spec, number=number)
        document, _ = _document_body(request)
        version = services.spec_version_replace_document(version=version, user=request.user, document=document)
        version.spec = spec
        return Response({"id": spec.id, **_version_summary(version), "document": normalize_document(version.document)})


class SpecVersionExportApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(
        summary="The version's document as YAML or JSON",
        parameters=[OpenApiParameter("format", str, enum=["yaml", "json"], default="yaml"),
                    OpenApiParameter("download", bool, description="send as an attachment")],
        responses={(200, "application/yaml"): OpenApiTypes.STR, (200, "application/json"): OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, spec_id: int, number: int) -> HttpResponse:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        version = selectors.spec_version_get(spec=spec, number=number)
        return export_response(version, request.query_params.get("format", "yaml"),
                               download=request.query_params.get("download") in ("1", "true"))


@extend_schema(exclude=True)
class SpecVersionExportSlashApi(SpecVersionExportApi):
    """The same export with a trailing slash, kept out of the schema."""


def export_response(version: SpecVersion, fmt: str, *, download: bool) -> HttpResponse:
    if fmt not in ("yaml", "json"):
        raise ValidationFailed.one("format", f"unknown format {fmt!r}; use yaml or json")
    if fmt == "yaml":
        response = HttpResponse(dump_yaml(version.document), content_type="application/yaml; charset=utf-8")
    else:
        response = HttpResponse(dump_json(version.document), content_type="application/json; charset=utf-8")
    if download:
        slug = "".join(ch if ch.isalnum() else "-" for ch in version.spec.name.lower()).strip("-") or "spec"
        response["Content-Disposition"] = content_disposition_header(True, f"{slug}-v{version.number}.{fmt}")
    return response


class SpecDiffApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(
        summary="Structured diff between two versions",
        parameters=[OpenApiParameter("from", int, description="default: the version before `to`"),
                    OpenApiParameter("to", int, description="default: the latest version")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        from_number, to_number = parse_diff_numbers(spec, request.query_params)
        return Response(selectors.spec_version_diff(spec=spec, from_number=from_number, to_number=to_number))


def parse_diff_numbers(spec: Spec, params) -> tuple[int, int]:
    latest = selectors.spec_version_latest(spec=spec).number
    numbers = {}
    for name, default in (("to", latest), ("from", None)):
        raw = params.get(name)
        if raw in (None, ""):
            numbers[name] = default
            continue
        try:
            numbers[name] = int(raw)
        except ValueError:
            raise ValidationFailed.one(name, f"must be a version number, got {raw!r}") from None
    if numbers["from"] is None:
        numbers["from"] = max(1, numbers["to"] - 1)
    return numbers["from"], numbers["to"]


class SpecChangesApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(summary="Who changed what and when, newest first", responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        changes = selectors.spec_changes(spec=spec)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(changes, request, view=self)
        return paginator.get_paginated_response([_change(c) for c in page])


def _change(change: SpecChange) -> dict[str, Any]:
    return {
        "version": change.version.number,
        "user": change.user.username,
        "at": change.created_at,
        "action": change.action,
        "summary": change.summary,
        "detail": change.detail,
    }


class SpecEditorsApi(APIView):
    permission_classes = [IsPolicy]

    @extend_schema(
        summary="Share a spec with other policy users",
        request=inline_serializer("SpecEditors", {"usernames": serializers.ListField(child=serializers.CharField())}),
        responses=inline_serializer("SpecEditorsOut", {"editors": serializers.ListField(child=serializers.CharField())}),
    )
    def post(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        usernames = request.data.get("usernames") if isinstance(request.data, dict) else None
        if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
            raise ValidationFailed.one("usernames", "must be a list of usernames")
        return Response({"editors": services.spec_editors_add(spec=spec, user=request.user, usernames=usernames)})
