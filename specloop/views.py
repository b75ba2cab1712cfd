from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from labeling import rater_selectors

from . import roles
from .errors import error_fragment


def home_view(request: HttpRequest) -> HttpResponse:
    """Each role starts where its work is: a rater on a task (``?all=1`` lists their campaigns instead)."""
    if not request.user.is_authenticated:
        return redirect("login")
    user_roles = roles.user_roles(request.user)
    if roles.POLICY in user_roles or roles.ADMIN in user_roles:
        return redirect("taxonomy:list")
    campaigns = list(rater_selectors.rater_campaigns(rater=request.user)) if roles.RATER in user_roles else []
    with_work = next((c for c in campaigns if c.has_work), None)
    if with_work is not None and "all" not in request.GET:
        return redirect("rate", campaign_id=with_work.pk)
    return render(request, "home.html", {"campaigns": campaigns})


def health_view(request: HttpRequest) -> JsonResponse:
    """For load balancers and container health checks: the process is up and the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused form: for htmx a banner (the page stays), otherwise a page that says what to do."""
    message = "This form expired or came from elsewhere. Reload the page and try again."
    if getattr(request, "htmx", False):
        return error_fragment(request, message=message, status=403)
    return render(request, "error.html", {"error": {"message": message, "detail": {}}}, status=403)
