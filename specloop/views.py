from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from . import roles


def home_view(request: HttpRequest) -> HttpResponse:
    """Each role starts where its work is."""
    if not request.user.is_authenticated:
        return redirect("login")
    user_roles = roles.user_roles(request.user)
    if roles.POLICY in user_roles or roles.ADMIN in user_roles:
        return redirect("taxonomy:list")
    return render(request, "home.html")


def health_view(request: HttpRequest) -> JsonResponse:
    """For load balancers and container health checks: the process is up and the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
