"""Request bodies: one DRF serializer validates a body and documents it in the OpenAPI schema.

The fields here are strict (JSON types as sent: no "2" for 2, no 1 for true), so what the schema says
a field is, is what the server takes. A field may carry the message the domain code uses for it
(``message="must be ..."``, where ``{value!r}`` stands for the value sent), so an answer names the field in the
same words whichever layer refused it. ``Body`` refuses unknown keys (the schema says
``additionalProperties: false``); ``body_parse`` turns the errors into ``ValidationFailed``.
"""

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.serializers import as_serializer_error

from .errors import ValidationFailed


class _Messaged:
    """One message for every way the field can be wrong (missing, wrong type, out of range)."""

    def __init__(self, *args, message: str | None = None, **kwargs):
        self.message = message
        super().__init__(*args, **kwargs)

    def run_validation(self, data=empty):
        try:
            return super().run_validation(data)
        except serializers.ValidationError as exc:
            if self.message is None or isinstance(exc.detail, dict):  # an item's own error keeps its place
                raise
            value = None if data is empty else data
            raise serializers.ValidationError(self.message.replace("{value!r}", repr(value))) from None


class Integer(_Messaged, serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class Number(_Messaged, serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class Text(_Messaged, serializers.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Boolean(_Messaged, serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class Choice(_Messaged, serializers.ChoiceField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class List(_Messaged, serializers.ListField):
    pass


class Dict(_Messaged, serializers.DictField):
    pass


@extend_schema_field(OpenApiTypes.OBJECT)
class Object(_Messaged, serializers.JSONField):
    """A JSON object whose inside the domain code checks (a spec document, a job config)."""

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError("must be a JSON object")
        return data


class Body(serializers.Serializer):
    """A JSON object body; keys it does not declare are refused, each named."""

    not_object_message = "send a JSON object"
    # Unknown keys are named one by one (``field.key``), or together at the object (``field``) when True.
    unknown_keys_at_object = False

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            if self.parent is not None:  # a nested object: the error belongs to its field
                raise serializers.ValidationError([self.not_object_message])
            raise serializers.ValidationError({"body": [self.not_object_message]})
        errors: dict[str, Any] = {}
        unknown = sorted(str(key) for key in set(data) - set(self.fields))
        if unknown and self.unknown_keys_at_object:
            errors["non_field_errors"] = [f"unknown key(s): {', '.join(unknown)}"]
        elif unknown:
            allowed = ", ".join(self.fields)
            errors.update({key: [f"unknown field; allowed: {allowed}"] for key in unknown})
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


# One instance per body class, made once. DRF deep-copies a serializer's whole field tree for every
# instance (about half a millisecond for a judgment, a sixth of the rater loop's CPU); validating keeps no
# state on the fields (errors and values stay in locals), so one tree serves every request and thread.
_validators: dict[type[serializers.Serializer], serializers.Serializer] = {}


def body_parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The validated body, or ValidationFailed naming each bad field (as ``serializer.is_valid()`` would)."""
    validator = _validators.get(serializer_class)
    if validator is None:
        validator = _validators.setdefault(serializer_class, serializer_class())
        validator.fields  # bind the tree now, not in two threads at once later  # noqa: B018
    if data is None:  # is_valid()'s own words for a missing body
        raise ValidationFailed([{"field": "body", "message": "No data provided"}])
    try:
        return validator.run_validation(data)
    except serializers.ValidationError as exc:
        raise ValidationFailed(_flatten(as_serializer_error(exc))) from None


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested errors as ``[{"field": "items[0].prompt", "message"}]``, in the domain code's field syntax."""
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            if key == "non_field_errors":
                field = prefix or "body"
            elif isinstance(key, int):  # a list item
                field = f"{prefix}[{key}]"
            else:
                field = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, field))
        return out
    if isinstance(detail, list):
        out = []
        for value in detail:
            out.extend(_flatten(value, prefix) if isinstance(value, (dict, list)) else
                       [{"field": prefix or "body", "message": str(value)}])
        return out
    return [{"field": prefix or "body", "message": str(detail)}]
