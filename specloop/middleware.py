"""Middleware that keeps bad input and failures from below in the documented error shape.

``ApiErrorMiddleware``: under ``/api/`` every error is JSON ``{"error", "detail"}``: an exception no view
handled (the database down: 503 with Retry-After; a body over the upload limit: 413; a bug: 500, logged
once), and any error page Django made itself (an unknown path, with DEBUG on too).

``TextInputMiddleware``: the path, headers, query parameters and form fields of every request are checked for
text the database cannot store (NUL, lone surrogates), a 400 naming the parameter. JSON and YAML
bodies are checked by ``specloop.parsers``.
"""

import logging

from django.core import signals
from django.http import HttpRequest, HttpResponse

from .errors import (ApplicationError, InternalError, ValidationFailed, error_response, is_api, json_error,
                     known_error, log_outage, unknown_endpoint)
from .textcheck import bad_text_reason, escaped

logger = logging.getLogger("django.request")

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if is_api(request) and response.status_code >= 400 and not _is_json(response):
            return _as_json(request, response)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        known = known_error(exc)
        if known is not None:
            return log_outage(request, exc, known, json_error(known))
        # A bug: logged here with its traceback, once (the answer is marked so that Django does not log
        # it again), and announced to error reporters listening to got_request_exception, as Django does.
        logger.error("Internal Server Error: %s", request.path, exc_info=exc,
                     extra={"status_code": 500, "request": request})
        signals.got_request_exception.send(sender=None, request=request)
        response = json_error(InternalError())
        response._has_been_logged = True
        return response


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


def _as_json(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """A page Django answered under /api/ (its 404, 400, 403 or 500) in the API's shape."""
    status = response.status_code
    if status == 404:
        error: ApplicationError = unknown_endpoint(request)
    elif status == 500:
        error = InternalError()
    else:
        error = ApplicationError(response.reason_phrase.lower())
        error.status_code = status
    answer = json_error(error)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            answer[header] = response[header]
    return answer


class TextInputMiddleware:
    """400 naming the parameter for a NUL or lone surrogate in the path, a header, the query string or a form."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs) -> HttpResponse | None:
        try:
            errors = _bad_input(request)
        except Exception as exc:  # reading the form: too large, too many fields
            known = known_error(exc)
            if known is None:
                raise
            return error_response(request, known)
        if errors:
            return error_response(request, ValidationFailed(errors))
        return None


def _bad_input(request: HttpRequest) -> list[dict[str, str]]:
    errors = []
    if reason := bad_text_reason(request.path_info):
        errors.append({"field": "path", "message": reason})
    for key, value in request.META.items():  # headers reach the database too (a token, Idempotency-Key)
        if key.startswith("HTTP_") and isinstance(value, str) and (reason := bad_text_reason(value)):
            errors.append({"field": key[5:].replace("_", "-").title(), "message": f"(header) {reason}"})
    sources = [("query parameter", request.GET)]
    # API bodies are read by the view's parsers (specloop.parsers; a form body is a 415 there); reading
    # them here would take the stream from a view that wants it raw.
    if request.method == "POST" and not is_api(request) and request.content_type in FORM_TYPES:
        sources.append(("form field", request.POST))
    for kind, data in sources:
        for key, values in data.lists():
            name = escaped(key)
            if reason := bad_text_reason(key):
                errors.append({"field": name, "message": f"the {kind} name {reason}"})
            for value in values:
                if isinstance(value, str) and (reason := bad_text_reason(value)):
                    errors.append({"field": name, "message": f"({kind}) {reason}"})
                    break
    return errors
