"""API token authentication that also reads the user's roles, in one precompiled query.

The token check runs on every API request; building it through the ORM (a join plus an aggregate)
cost a quarter of the rater loop's CPU, so on PostgreSQL it is one plain SQL statement.

Wrong tokens are counted per client address (``TokenFailureThrottle``): past the limit that address gets
429 with Retry-After, before its token is looked at, until the window ends.
"""

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from specloop.throttling import TokenFailureThrottle

ROLE_NAMES = ("rater", "policy", "admin")  # specloop.roles.ROLES; that module imports DRF views (a cycle here)


def _user_sql() -> tuple[str, list[str]]:
    User = get_user_model()
    fields = [f for f in User._meta.concrete_fields]
    columns = ", ".join(f'u."{f.column}"' for f in fields)
    sql = (
        f"SELECT {columns}, t.created, ARRAY(SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id "
        f"WHERE ug.user_id = u.id AND g.name = ANY(%s)) "
        f'FROM authtoken_token t JOIN "{User._meta.db_table}" u ON u.id = t.user_id WHERE t.key = %s'
    )
    return sql, [f.attname for f in fields]


class TokenWithRolesAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``; the user comes back with its SpecLoop roles already known."""

    _sql: tuple[str, list[str]] | None = None

    def authenticate(self, request):
        if not request.META.get("HTTP_AUTHORIZATION"):
            return None  # no credentials: nothing to count (the session or the permission check decides)
        throttle = TokenFailureThrottle()
        throttle.check(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def authenticate_credentials(self, key):
        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
        if TokenWithRolesAuthentication._sql is None:
            TokenWithRolesAuthentication._sql = _user_sql()
        sql, attnames = TokenWithRolesAuthentication._sql
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(ROLE_NAMES), key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = get_user_model().from_db(connection.alias, attnames, row[:-2])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        from specloop.roles import remember_roles

        remember_roles(user, row[-1])
        token = Token.from_db(connection.alias, ["key", "user_id", "created"], [key, user.pk, row[-2]])
        token.user = user
        return user, token
