"""Domain errors and the one place they become HTTP answers.

Services raise ``ApplicationError`` (or a child). The API answers ``{"error": ..., "detail": ...}``;
a browser page gets the error page, an htmx request an error fragment swapped into ``#flash``.
Failures from below (a body over the upload limit, the database down) are mapped to the same shape by
``known_error``; ``specloop.middleware.ApiErrorMiddleware`` makes every other error under ``/api/`` JSON.
"""

import logging
from typing import Any

from django import db
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger("specloop.errors")


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or {}
        self.headers = headers or {}  # sent with the answer (Retry-After, say)


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
    retry_after_seconds = 5  # a restart or failover is usually over by then

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(message, detail=detail, headers={"Retry-After": str(self.retry_after_seconds), **(headers or {})})

    @classmethod
    def database(cls) -> "ServiceUnavailable":
        return cls("the database is unavailable; try again shortly", detail={"service": "database"})


class PayloadTooLarge(ApplicationError):
    status_code = 413

    @classmethod
    def body(cls, limit: int | None) -> "PayloadTooLarge":
        size = f"{limit / 2**20:.1f} MiB" if limit else "the limit"
        return cls(f"the request body is larger than {size}; send less at a time", detail={"limit_bytes": limit})


class InternalError(ApplicationError):
    """A bug: the answer says only that it was logged."""

    status_code = 500

    def __init__(self) -> None:
        super().__init__("internal error: the server failed on this request, and the failure has been logged")


def known_error(exc: BaseException | None) -> ApplicationError | None:
    """The ``ApplicationError`` an exception stands for, or None when it is a bug (a 500)."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge.body(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return ApplicationError("the form has too many fields or files")
    if isinstance(exc, (db.OperationalError, db.InterfaceError)):
        # Connecting failed or the connection broke: an outage, not a bug in this request.
        return ServiceUnavailable.database()
    return None


def error_body(exc: ApplicationError) -> dict[str, Any]:
    body = {"error": exc.message, "detail": exc.detail}
    if "line" in exc.detail:  # import errors name the line at the top level: {"line", "error"}
        body["line"] = exc.detail["line"]
    return body


def json_error(exc: ApplicationError) -> JsonResponse:
    """The API's answer to ``exc`` from outside a DRF view (middleware, URL resolution, error handlers)."""
    return JsonResponse(error_body(exc), status=exc.status_code, headers=exc.headers)


def log_outage(request: HttpRequest, original: BaseException, known: ApplicationError, response: HttpResponse) -> HttpResponse:
    """One line, no traceback, for a request that failed on a service being down (the cause is outside
    the code); ``response`` is marked logged so that Django does not add a second line."""
    if known.status_code >= 500 and known is not original:
        first_line = (str(original).strip().splitlines() or [""])[0]
        logger.warning("%s %s answered %s: %s: %s", request.method, request.path, known.status_code,
                       type(original).__name__, first_line)
        response._has_been_logged = True
    return response


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    known = known_error(exc)
    if known is not None:
        response = Response(error_body(known), status=known.status_code, headers=known.headers)
        return log_outage(context["request"], exc, known, response) if "request" in context else response
    # Imported here: rest_framework.views reads the parser setting (specloop.parsers imports this module).
    from rest_framework.views import exception_handler as drf_exception_handler

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


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def page_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    """``exc`` as the error page, or as a banner for an htmx request."""
    if getattr(request, "htmx", False):
        response = error_fragment(request, message=exc.message, detail=exc.detail, status=exc.status_code)
    else:
        response = render(request, "error.html", {"error": exc}, status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def error_response(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    """``exc`` as JSON under ``/api/``; as a page or an htmx banner elsewhere."""
    return json_error(exc) if is_api(request) else page_error(request, exc)


class ApplicationErrorMiddleware:
    """Turns an ``ApplicationError`` raised by a page view into a page or an htmx fragment."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if is_api(request):
            return None  # specloop.middleware.ApiErrorMiddleware answers JSON
        known = known_error(exc)
        if isinstance(exc, (db.OperationalError, db.InterfaceError)):
            return _database_down_page(request, exc, known)
        if known is not None:
            return page_error(request, known)
        return None


def _database_down_page(request: HttpRequest, original: Exception, exc: ApplicationError) -> HttpResponse:
    """A plain page: the usual templates read the user and their roles, from the database that is down."""
    message = exc.message[0].upper() + exc.message[1:]
    response = HttpResponse(f"<!doctype html><title>Unavailable</title><h1>Unavailable</h1><p>{message}.</p>",
                            status=503, headers=exc.headers)
    return log_outage(request, original, exc, response)


# --- the URLconf's error handlers (specloop.urls): JSON under /api/, Django's pages elsewhere -------


def unknown_endpoint(request: HttpRequest) -> NotFound:
    return NotFound(f"no API endpoint at {request.path}; the endpoints are listed at /api/docs/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return json_error(unknown_endpoint(request))
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400s (a request it refused before any view ran): 413 when the body was too large."""
    known = known_error(exception)
    if is_api(request):
        return json_error(known or ApplicationError("bad request"))
    if known is not None and known.status_code == 413:
        return HttpResponse(f"<!doctype html><title>Too large</title><h1>Too large</h1><p>{known.message}.</p>",
                            status=413)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    return json_error(InternalError()) if is_api(request) else defaults.server_error(request)


def error_fragment(request: HttpRequest, *, message: str, detail: dict | None = None, status: int) -> HttpResponse:
    """An error banner swapped into ``#flash`` instead of the element the htmx request targeted."""
    response = render(request, "partials/error.html", {"error": {"message": message, "detail": detail or {}}}, status=status)
    response["HX-Retarget"] = "#flash"
    response["HX-Reswap"] = "innerHTML"
    return response
