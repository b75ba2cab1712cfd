"""`manage.py add_user` creates or updates a user with a role and prints the API token last."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.authtoken.models import Token

from specloop import roles

User = get_user_model()


def add_user(*args: str) -> list[str]:
    out = StringIO()
    call_command("add_user", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.mark.django_db
def test_it_creates_a_user_with_a_role_and_prints_the_token_last():
    lines = add_user("maya", "--role", "policy", "--password", "s3cret-pass-123")
    user = User.objects.get(username="maya")
    assert roles.user_roles(user) == {"policy"}
    assert user.check_password("s3cret-pass-123")
    assert not user.is_staff
    assert lines[-1] == Token.objects.get(user=user).key


@pytest.mark.django_db
def test_it_updates_an_existing_user_and_keeps_the_token(client):
    first = add_user("maya", "--role", "rater", "--password", "pw-one-12345")[-1]
    second = add_user("maya", "--role", "admin")[-1]
    user = User.objects.get(username="maya")
    assert first == second
    assert user.check_password("pw-one-12345")  # no --password: unchanged
    user = User.objects.get(username="maya")
    assert roles.user_roles(user) == {"admin"} and user.is_staff
    assert User.objects.filter(username="maya").count() == 1


@pytest.mark.django_db
def test_several_roles_can_be_given():
    add_user("sam", "--role", "policy", "--role", "admin")
    assert roles.user_roles(User.objects.get(username="sam")) == {"policy", "admin"}


@pytest.mark.django_db
def test_the_printed_token_authenticates_api_calls(client):
    token = add_user("api-bot", "--role", "policy")[-1]
    response = client.get("/api/v1/specs/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError):
        add_user("x", "--role", "wizard")
    assert not User.objects.filter(username="x").exists()


@pytest.mark.django_db
def test_token_authentication_reads_the_roles_in_the_same_query(client, django_assert_num_queries):
    from specloop.roles import ROLES

    assert set(ROLES) == {"rater", "policy", "admin"}  # specloop.authentication keeps its own copy
    token = add_user("pia", "--role", "policy", "--role", "rater")[-1]
    # PostgreSQL: token + user + roles (one SQL statement), then the specs list itself (one query).
    # SQLite takes DRF's token lookup (token with its user) and a roles query: one more.
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        assert client.get("/api/v1/specs/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert client.get("/api/v1/specs/", HTTP_AUTHORIZATION="Token nope").status_code == 401
