"""Token authentication's one-statement read on PostgreSQL answers what DRF's ORM read answers."""

import pytest
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from specloop.authentication import TokenWithRolesAuthentication
from specloop.roles import user_roles
from specloop.services import user_upsert


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


@pytest.mark.django_db
@pytest.mark.parametrize("roles", [["rater"], ["policy", "rater"], ["admin"], []])
def test_the_token_read_gives_the_user_token_and_roles_the_orm_gives(roles):
    user, key, _ = user_upsert(username="tara", role_names=roles or ["rater"], password="pw-tara-123")
    if not roles:
        user.groups.clear()
    fast_user, fast_token = TokenWithRolesAuthentication().authenticate_credentials(key)
    plain_user, plain_token = TokenAuthentication().authenticate_credentials(key)
    assert fields(fast_user) == fields(plain_user)
    assert fields(fast_token) == fields(plain_token)
    assert user_roles(fast_user) == frozenset(plain_user.groups.values_list("name", flat=True))


@pytest.mark.django_db
def test_an_unknown_or_inactive_token_is_refused_by_both_reads():
    user, key, _ = user_upsert(username="ivan", role_names=["rater"], password="pw-ivan-123")
    for auth in (TokenWithRolesAuthentication(), TokenAuthentication()):
        with pytest.raises(exceptions.AuthenticationFailed):
            auth.authenticate_credentials("0" * 40)
    user.is_active = False
    user.save()
    for auth in (TokenWithRolesAuthentication(), TokenAuthentication()):
        with pytest.raises(exceptions.AuthenticationFailed):
            auth.authenticate_credentials(key)

