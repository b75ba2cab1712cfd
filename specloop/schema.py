"""The OpenAPI schema: drf-spectacular's AutoSchema plus the error answers an operation can give.

Every API error has one shape, ``{"error": str, "detail": object}`` (``specloop.errors``), so the
schema lists it once per status code instead of each view repeating it: 401/403 (no token, wrong
role), 429 (throttled), 503 (the database or broker is down) everywhere; 404 where a path or body
names an object; 400 where there is input to get wrong; 409, 413 and 415 where there is a body.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from .serializers import Body


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="what went wrong and what to do next")
    detail = serializers.DictField(
        help_text='more about it; for input errors `{"errors": [{"field", "message"}, ...]}`, one per bad field')
    line = serializers.IntegerField(required=False, help_text="file imports: the bad line (1-based)")

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    "400": "the input is invalid: `detail.errors` names each bad field",
    "401": "no valid credentials (send `Authorization: Token <key>`)",
    "403": "your role may not do this",
    "404": "no such object, or not one you can see",
    "409": "the object's state forbids this (a published version, a judged assignment, ...)",
    "413": "the body is over the upload limit",
    "415": "a body of a media type this operation does not read",
    "429": "too many requests; wait and retry",
    "503": "a service the API needs (database, broker) is unavailable; retry later",
}


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class AutoSchema(SpectacularAutoSchema):
    def _error_codes(self) -> list[str]:
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_path = "{" in self.path
        has_query = any(p.get("in") == "query" for p in self._get_parameters())
        codes = ["401", "403", "429", "503"]
        if has_body or has_query:
            codes.append("400")
        if has_body or has_path or has_query:
            codes.append("404")
        if has_body:
            codes += ["409", "413", "415"]
        return sorted(codes)

    def map_parsers(self):
        # The API's bodies are JSON (a few views add YAML or file uploads); the form parsers DRF also runs
        # would hand the serializers strings, which their JSON types refuse.
        return [m for m in super().map_parsers() if m not in FORM_MEDIA_TYPES]

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if isinstance(serializer, Body):
            schema["additionalProperties"] = False  # Body refuses keys it does not declare
        return schema

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body:  # a YAML alternative (a string) must not make the JSON body look optional
            serializer = self.get_request_serializer()
            if isinstance(serializer, dict):
                serializer = serializer.get("application/json")
            fields = serializer().fields.values() if isinstance(serializer, type) and issubclass(serializer, Body) else None
            all_optional = fields is not None and not any(f.required for f in fields)
            body["required"] = not (all_optional or getattr(self.view, "request_body_optional", False))
        return body

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, ["application/json"], direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses
