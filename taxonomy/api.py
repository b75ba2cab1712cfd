"""REST API for safety specs: one view per operation, serializers beside it."""

from typing import Any

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from specloop.errors import ValidationFailed
from specloop.parsers import JSONParser, read_limited
from specloop.roles import IsPolicy, IsPolicyOrAdmin
from specloop.serializers import Body, List, Object, Text, body_parse

from . import selectors, services
from .document import dump_json, dump_yaml, normalize_document, parse_yaml
from .models import Spec, SpecChange, SpecVersion

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class YAMLParser(BaseParser):
    """Reads a YAML body; errors name the line and column (size, nesting and text checked as for JSON)."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return {"__yaml__": parse_yaml(read_limited(stream))}


YAML_PARSERS = [YAMLParser] + [
    type(f"YAMLParser{i}", (YAMLParser,), {"media_type": media_type}) for i, media_type in enumerate(YAML_TYPES[1:])
]


class SpecDocumentIn(Body):
    """A spec document (taxonomy/document.py checks its inside and names each bad field)."""

    not_object_message = 'send JSON {"document": {...}} or a YAML document'
    document = Object(help_text="the spec document: goals, categories, rubric, principles, budgets",
                      error_messages={"required": "is required: the spec document (goals, categories, rubric, ...)"})


class SpecCreateIn(SpecDocumentIn):
    """A new spec: its name and version 1's document (taxonomy/document.py checks the document's inside)."""

    not_object_message = 'send JSON {"name": ..., "document": {...}} or a YAML document'
    name = Text(max_length=200, message="a spec needs a name (at most 200 characters)",
                help_text="for a YAML body, `?name=` or a top-level `name` key")
    description = Text(required=False, allow_blank=True, max_length=10_000)


def _document_body(request: Request, serializer_class: type[Body], **defaults: Any) -> dict[str, Any]:
    """The body as ``serializer_class`` reads it: JSON as sent, or a YAML document (or a YAML ``{"document": ...}``).

    ``defaults`` fill keys the body leaves out (the spec name from ``?name=``).
    """
    data = request.data
    if isinstance(data, dict) and "__yaml__" in data:
        loaded = data["__yaml__"]
        if loaded is None:
            raise ValidationFailed.one("document", "the YAML body is empty")
        data = loaded if isinstance(loaded, dict) and "document" in loaded else {"document": loaded}
    if isinstance(data, dict):
        data = {**{k: v for k, v in defaults.items() if v is not None}, **data}
    return body_parse(serializer_class, data)


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
        request={"application/json": SpecCreateIn, "application/yaml": OpenApiTypes.STR},
        parameters=[OpenApiParameter("name", str, description="spec name for a YAML body")],
        responses={201: SpecCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        body = _document_body(request, SpecCreateIn, name=request.query_params.get("name"))
        version = services.spec_create(user=request.user, name=body["name"], document=body["document"],
                                       description=body.get("description", ""))
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
    request_body_optional = True  # no body: a copy of the latest version

    @extend_schema(
        summary="Start a new draft",
        description="A copy of the latest version (no body), or the given document (JSON `{\"document\"}` or YAML).",
        request={"application/json": SpecDocumentIn, "application/yaml": OpenApiTypes.STR},
        responses={201: SpecCreatedSerializer},
    )
    def post(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        document = _document_body(request, SpecDocumentIn)["document"] if request.body else None
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
        description="JSON `{\"document\": {...}}` or a YAML document. Published versions are immutable: 409 with a message.",
        request={"application/json": SpecDocumentIn, "application/yaml": OpenApiTypes.STR},
        responses=OpenApiTypes.OBJECT,
    )
    def put(self, request: Request, spec_id: int, number: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        version = selectors.spec_version_get(spec=spec, number=number)
        document = _document_body(request, SpecDocumentIn)["document"]
        version = services.spec_version_replace_document(version=version, user=request.user, document=document)
        version.spec = spec
        return Response({"id": spec.id, **_version_summary(version), "document": normalize_document(version.document)})


class SpecVersionExportApi(APIView):
    permission_classes = [IsPolicyOrAdmin]

    @extend_schema(
        summary="The version's document as YAML or JSON",
        parameters=[OpenApiParameter("format", str, enum=["yaml", "json"], default="yaml"),
                    OpenApiParameter("download", bool, description="send as an attachment")],
        responses={(200, "application/yaml"): OpenApiTypes.OBJECT, (200, "application/json"): OpenApiTypes.OBJECT},
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


class SpecEditorsIn(Body):
    usernames = List(child=Text(max_length=150), message="must be a list of usernames")


class SpecEditorsApi(APIView):
    permission_classes = [IsPolicy]

    @extend_schema(
        summary="Share a spec with other policy users",
        request=SpecEditorsIn,
        responses=inline_serializer("SpecEditorsOut", {"editors": serializers.ListField(child=serializers.CharField())}),
    )
    def post(self, request: Request, spec_id: int) -> Response:
        spec = selectors.spec_get(user=request.user, spec_id=spec_id)
        usernames = body_parse(SpecEditorsIn, request.data)["usernames"]
        return Response({"editors": services.spec_editors_add(spec=spec, user=request.user, usernames=usernames)})
