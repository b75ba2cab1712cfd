"""Guessing is slowed down: the login locks out after repeated wrong passwords, wrong API tokens get 429.

The suite's own rates are raised in tests/conftest.py; each test here sets the low rate it tests. The
throttles' clock is a fixture (a window of our own per test, moved forward instead of sleeping), and the
lockout's cool-off is passed by moving the recorded attempts back in time.
"""

import itertools
import os
import secrets
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.db.models import F
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from specloop.throttling import AnonThrottle, WindowThrottle

ATTACKER = "10.9.8.7"
NEIGHBOUR = "10.1.2.3"
_windows = itertools.count(1)


@pytest.fixture
def clock(monkeypatch):
    """The throttles' time: each test starts in a window no other test (nor a past run in Redis) used."""
    now = {"t": 1e9 + 86400 * (next(_windows) + secrets.randbelow(10**6))}
    monkeypatch.setattr(WindowThrottle, "timer", staticmethod(lambda: now["t"]))
    return now


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        merged = {"anon": None, "user": None, "token_failure": None, **rates}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
    return set_rates


@pytest.fixture
def lockout(settings):
    settings.AXES_FAILURE_LIMIT = 10
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def log_in(client, username, password, address=ATTACKER, **headers):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- the login lockout --------------------------------------------------------------------------------------

def test_sixty_wrong_passwords_lock_the_login_and_the_right_password_is_refused_until_the_cool_off(
        client, actors, lockout):
    statuses = [log_in(client, "rita_rater", f"wrong-{i}").status_code for i in range(60)]
    assert statuses == [200] * 9 + [429] * 51  # the form again with its error, then locked from the 10th

    response = log_in(client, "rita_rater", "pw-rater-123")
    assert response.status_code == 429 and not logged_in(client)
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert "Login locked" in page and "Try again in 15 minutes." in page


def test_a_locked_login_answers_json_saying_when_to_retry_to_a_script(client, actors, lockout):
    for i in range(10):
        log_in(client, "rita_rater", f"wrong-{i}")
    response = log_in(client, "rita_rater", "pw-rater-123", HTTP_ACCEPT="application/json")
    assert response.status_code == 429 and response["Retry-After"] == "900"
    assert response.json() == {
        "error": "Too many failed logins for this account from your address. Try again in 15 minutes.",
        "detail": {"retry_after": 900, "failure_limit": 10},
    }


def test_the_lockout_holds_one_username_at_one_address(client, actors, lockout):
    for i in range(10):
        log_in(client, "rita_rater", f"wrong-{i}")
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 429

    assert log_in(client, "rita_rater", "pw-rater-123", address=NEIGHBOUR).status_code == 302  # the real rita
    client.logout()
    assert log_in(client, "rob_rater", "pw-rater2-123").status_code == 302  # another account from that address


def test_a_sent_x_forwarded_for_does_not_escape_the_lockout(client, actors, lockout):
    for i in range(10):
        log_in(client, "rita_rater", f"wrong-{i}", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert log_in(client, "rita_rater", "pw-rater-123", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_the_lockout_ends_after_the_cool_off(client, actors, lockout):
    for i in range(10):
        log_in(client, "rita_rater", f"wrong-{i}")
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 429

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 429  # not yet, and the wait restarts

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 302 and logged_in(client)


def test_an_admin_can_unlock_a_locked_login_at_once(client, actors, lockout):
    for i in range(10):
        log_in(client, "rita_rater", f"wrong-{i}")
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 429

    axes_reset(username="rita_rater")
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 302


def test_a_successful_login_forgets_the_earlier_failures(client, actors, lockout):
    for i in range(9):
        log_in(client, "rita_rater", f"wrong-{i}")
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 302
    client.logout()
    for i in range(9):
        assert log_in(client, "rita_rater", f"wrong-again-{i}").status_code == 200
    assert log_in(client, "rita_rater", "pw-rater-123").status_code == 302


def test_the_limit_and_cool_off_come_from_the_environment(monkeypatch):
    import importlib

    import specloop.settings as project_settings

    monkeypatch.setenv("LOGIN_FAILURE_LIMIT", "4")
    monkeypatch.setenv("LOGIN_COOLOFF_MINUTES", "2.5")
    monkeypatch.setenv("API_THROTTLE_TOKEN_FAILURES", "7/hour")
    monkeypatch.setenv("API_THROTTLE_USER", "off")
    try:
        fresh = importlib.reload(project_settings)
        assert fresh.AXES_FAILURE_LIMIT == 4 and fresh.AXES_COOLOFF_TIME == timedelta(minutes=2.5)
        assert fresh.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token_failure"] == "7/hour"
        assert fresh.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] is None
    finally:
        monkeypatch.undo()
        importlib.reload(project_settings)


# --- API tokens ---------------------------------------------------------------------------------------------

def api_get(client, token, address=ATTACKER, path="/api/v1/specs/"):
    return client.get(path, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR=address)


def test_random_tokens_get_429_with_retry_after_once_over_the_limit(client, actors, rates, clock):
    rates(token_failure="5/min")
    statuses = [api_get(client, secrets.token_hex(20)).status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3

    response = api_get(client, secrets.token_hex(20))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"].startswith("Too many requests with an invalid token from this address.")


def test_a_blocked_address_cannot_confirm_a_right_guess_but_a_user_elsewhere_keeps_working(
        client, actors, rates, clock):
    rates(token_failure="5/min")
    for _ in range(5):
        api_get(client, secrets.token_hex(20))
    assert api_get(client, actors.policy_token).status_code == 429  # a right "guess" looks like a wrong one
    assert api_get(client, actors.policy_token, address=NEIGHBOUR).status_code == 200


def test_token_failures_are_forgotten_when_the_window_ends(client, actors, rates, clock):
    rates(token_failure="5/min")
    for _ in range(6):
        api_get(client, secrets.token_hex(20))
    assert api_get(client, actors.policy_token).status_code == 429

    clock["t"] += 60
    assert api_get(client, actors.policy_token).status_code == 200
    assert api_get(client, secrets.token_hex(20)).status_code == 401


def test_a_right_token_is_not_counted_as_a_failure(client, actors, rates, clock):
    rates(token_failure="3/min")
    for _ in range(10):
        assert api_get(client, actors.policy_token).status_code == 200
    assert api_get(client, secrets.token_hex(20)).status_code == 401


def test_a_user_over_the_user_rate_gets_429_and_another_user_does_not(client, actors, rates, clock):
    rates(user="3/min")
    assert [api_get(client, actors.policy_token).status_code for _ in range(4)] == [200, 200, 200, 429]
    throttled = api_get(client, actors.policy_token)
    assert 1 <= int(throttled["Retry-After"]) <= 60 and "throttled" in throttled.json()["error"]
    assert api_get(client, actors.admin_token).status_code == 200  # same address, another user


def _public_view():
    class Public(APIView):  # no such endpoint today; the anon rate guards any that comes
        permission_classes = []
        throttle_classes = [AnonThrottle]

        def get(self, request):
            return Response({"ok": True})

    return Public.as_view()


def test_anonymous_requests_over_the_anon_rate_get_429(rates, clock):
    rates(anon="2/min")
    view, factory = _public_view(), APIRequestFactory()
    assert [view(factory.get("/", REMOTE_ADDR=ATTACKER)).status_code for _ in range(3)] == [200, 200, 429]
    assert view(factory.get("/", REMOTE_ADDR=NEIGHBOUR)).status_code == 200


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_the_token_throttle_counts_in_the_throttle_cache_whether_local_or_redis(
        backend, client, actors, rates, clock, settings):
    if backend == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("the throttle cache is Redis only when REDIS_URL is set")
        cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"],
                 "KEY_PREFIX": "throttle"}
    else:
        cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle-test"}
    settings.CACHES = {**settings.CACHES, "throttle": cache}
    rates(token_failure="4/min")
    assert [api_get(client, secrets.token_hex(20)).status_code for _ in range(5)] == [401] * 4 + [429]

    from django.core.cache import caches

    assert caches["throttle"].__class__.__name__ == ("RedisCache" if backend == "redis" else "LocMemCache")
    window = int(clock["t"] // 60) * 60
    assert caches["throttle"].get(f"token_failure:{ATTACKER}:{window}") == 4


def test_the_api_keeps_answering_when_the_throttle_cache_is_down(client, actors, rates, clock, settings):
    settings.CACHES = {**settings.CACHES, "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing there
    rates(token_failure="1/min", user="1/min")
    assert api_get(client, secrets.token_hex(20)).status_code == 401
    assert [api_get(client, actors.policy_token).status_code for _ in range(2)] == [200, 200]  # not counted, not 500
