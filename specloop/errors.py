"""Domain errors and the one place they become HTTP answers.

Services raise ``ApplicationError`` (or a child). The API answers ``{"error": ..., "detail": ...}``;
a browser page gets the error page, an htmx request an error fragment swapped into ``#flash``.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class ValidationFailed(ApplicationError):
    """Input that breaks a rule; ``detail["errors"]`` lists each ``{"field", "message"}``."""

    def __init__(self, errors: list[dict[str, str]]):
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first['field']}: {first['message']}{more}", detail={"errors": errors})
        self.errors = errors

    @classmethod
    def one(cls, field: str, message: str) -> "ValidationFailed":
        return cls([{"field": field, "message": message}])


class Conflict(ApplicationError):
    """The request is valid but the object's state forbids it (a published version, say)."""

    status_code = 409


class NotFound(ApplicationError):
    status_code = 404


class ServiceUnavailable(ApplicationError):
    """A service the request needs (the database, the job queue) is down: try again later."""

    status_code = 503


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        body = {"error": exc.message, "detail": exc.detail}
        if "line" in exc.detail:  # import errors name the line at the top level: {"line", "error"}
            body["line"] = exc.detail["line"]
        return Response(body, status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = _flatten_drf_errors(exc.detail)
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3]) or "invalid input"
        response.data = {"error": message, "detail": {"errors": errors}}
    else:
        message = str(getattr(exc, "detail", exc))
        response.data = {"error": message, "detail": {}}
    return response


def _flatten_drf_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(detail, dict):
        out: list[dict[str, str]] = []
        for key, value in detail.items():
            field = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                field = prefix or "body"
            out.extend(_flatten_drf_errors(value, field))
        return out
    if isinstance(detail, list):
        out = []
        for i, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                out.extend(_flatten_drf_errors(value, f"{prefix}[{i}]"))
            else:
                out.append({"field": prefix or "body", "message": str(value)})
        return out
    return [{"field": prefix or "body", "message": str(detail)}]


class ApplicationErrorMiddleware:
    """Turns an ``ApplicationError`` raised by a page view into a page or an htmx fragment."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, ApplicationError) or request.path.startswith("/api/"):
            return None
        if getattr(request, "htmx", False):
            return error_fragment(request, message=exc.message, detail=exc.detail, status=exc.status_code)
        return render(request, "error.html", {"error": exc}, status=exc.status_code)


def error_fragment(request: HttpRequest, *, message: str, detail: dict | None = None, status: int) -> HttpResponse:
    """An error banner swapped into ``#flash`` instead of the element the htmx request targeted."""
    response = render(request, "partials/error.html", {"error": {"message": message, "detail": detail or {}}}, status=status)
    response["HX-Retarget"] = "#flash"
    response["HX-Reswap"] = "innerHTML"
    return response
