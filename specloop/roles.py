"""Roles are Django groups: ``rater``, ``policy``, ``admin`` (admins are also staff)."""

from functools import wraps

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from rest_framework.permissions import BasePermission

from specloop.errors import error_fragment

RATER = "rater"
POLICY = "policy"
ADMIN = "admin"
ROLES = (RATER, POLICY, ADMIN)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The user's roles, read once per request object and kept on it."""
    if not user.is_authenticated:
        return frozenset()
    if getattr(user, "_specloop_roles", None) is None:
        remember_roles(user, user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return user._specloop_roles


def remember_roles(user, names) -> None:
    """Roles read together with the user (one query for authentication and roles)."""
    found = set(names) & set(ROLES)
    if user.is_superuser:
        found.add(ADMIN)
    user._specloop_roles = frozenset(found)


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def role_required(*roles: str):
    """Page decorator: anonymous users go to the login page, users without the role get 403.

    For htmx requests the login redirect is a full-page ``HX-Redirect`` and the 403 an error fragment,
    so neither lands inside the part of the page being swapped.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = redirect_to_login(request.htmx.current_url or request.get_full_path()).url
                    return response
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                message = f"This page needs the {' or '.join(roles)} role."
                if getattr(request, "htmx", False):
                    return error_fragment(request, message=message, status=403)
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def role_permission(*roles: str) -> type[BasePermission]:
    """A DRF permission class that lets authenticated users with one of ``roles`` through."""

    class HasRole(BasePermission):
        message = f"This endpoint needs the {' or '.join(roles)} role."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated and has_role(request.user, *roles))

    HasRole.__name__ = "Has" + "Or".join(r.title() for r in roles) + "Role"
    return HasRole


IsPolicy = role_permission(POLICY)
IsAdmin = role_permission(ADMIN)
IsPolicyOrAdmin = role_permission(POLICY, ADMIN)
IsRater = role_permission(RATER)


def roles_context(request) -> dict:
    roles = user_roles(request.user)
    return {"roles": roles, "is_policy": POLICY in roles, "is_admin": ADMIN in roles, "is_rater": RATER in roles}

