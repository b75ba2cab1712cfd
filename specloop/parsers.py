"""Request body parsers that refuse what would fail later: too large, too deep, text the database refuses.

``JSONParser`` is the API's default (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``); a view that lists
its own parsers uses it, or a parser whose result goes through ``checked_body``.
"""

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers

from .errors import PayloadTooLarge, ValidationFailed
from .textcheck import MAX_DEPTH, check_tree


def read_limited(stream, *, limit: int | None = None) -> bytes:
    """The whole body, or 413 when it is over ``limit`` bytes (default: Django's upload limit)."""
    if limit is None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if stream is None:
        return b""
    raw = stream.read(limit + 1) if limit is not None else stream.read()
    if limit is not None and len(raw) > limit:
        raise PayloadTooLarge.body(limit)
    return raw


def checked_body(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` unchanged, or a 400 naming each field that nests too deep or holds text that cannot be stored."""
    errors = check_tree(value, max_depth=max_depth)
    if errors:
        raise ValidationFailed(errors)
    return value


def _too_deep() -> ValidationFailed:
    return ValidationFailed.one("body", f"nested deeper than {MAX_DEPTH} levels")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size limit, a nesting limit and the text check."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        raw = read_limited(stream)
        try:
            text = codecs.decode(raw, encoding)
        except UnicodeDecodeError as exc:
            raise ValidationFailed.one("body", f"the body is not {encoding} text (byte {exc.start})") from None
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise _too_deep() from None
        except json.JSONDecodeError as exc:
            raise ValidationFailed.one("body", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except ValueError as exc:
            raise ValidationFailed.one("body", f"not valid JSON: {exc}") from None
        return checked_body(data)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
