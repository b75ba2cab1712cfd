"""API token authentication that also reads the user's roles, in one query instead of two."""

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Q
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

ROLE_NAMES = ("rater", "policy", "admin")  # specloop.roles.ROLES; that module imports DRF views (a cycle here)


class TokenWithRolesAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``; the user comes back with its SpecLoop roles already known."""

    def authenticate_credentials(self, key):
        qs = Token.objects.select_related("user").filter(key=key)
        if connection.vendor == "postgresql":
            qs = qs.annotate(role_names=ArrayAgg("user__groups__name", filter=Q(user__groups__name__in=ROLE_NAMES),
                                                 default=[]))
        token = qs.first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if hasattr(token, "role_names"):
            from specloop.roles import remember_roles

            remember_roles(user, token.role_names)
        return user, token
