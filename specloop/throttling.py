"""How often a client may try: API request rates, failed-token throttling, and the login lockout's answer.

Rates are DRF's ``DEFAULT_THROTTLE_RATES`` (``"120/min"``; ``None`` turns a scope off), read on each request
so an override applies at once. Each scope counts in fixed windows with one atomic increment in the
``throttle`` cache: per process by default (the embedded server is one process), shared by every web
process through Redis when ``REDIS_URL`` is set. The login lockout itself is django-axes (see settings);
``login_lockout_response`` is its answer.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from redis.exceptions import RedisError
from rest_framework import exceptions, throttling
from rest_framework.settings import api_settings

CACHE = "throttle"
log = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the one NUM_PROXIES trusted proxies put in X-Forwarded-For.

    One rule for the API throttles and the login lockout; with no proxy configured a client cannot pick
    its own address by sending X-Forwarded-For.
    """
    return throttling.BaseThrottle().get_ident(request) or ""


def parse_rate(rate: str | None) -> tuple[int | None, int]:
    """``"20/min"`` → (20, 60); ``None`` → (None, 0): no limit."""
    if rate is None:
        return None, 0
    number, period = rate.split("/")
    return int(number), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0]]


class WindowThrottle(throttling.BaseThrottle):
    """At most N requests per client and window; the count is one atomic cache increment per request."""

    scope = ""
    timer = staticmethod(time.time)

    def __init__(self) -> None:
        self.limit, self.window = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope))
        self.reset_at = 0.0

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def _key(self, ident: str) -> str:
        now = self.timer()
        start = int(now // self.window) * self.window
        self.reset_at = start + self.window
        return f"{self.scope}:{ident}:{start}"

    def count(self, ident: str) -> int:
        try:
            return caches[CACHE].get(self._key(ident), 0)
        except (RedisError, OSError) as exc:
            return self._unavailable(exc)

    def hit(self, ident: str) -> int:
        try:
            return self._hit(ident)
        except (RedisError, OSError) as exc:
            return self._unavailable(exc)

    def _unavailable(self, exc: Exception) -> int:
        # Redis down must not take the API down with it: nothing is counted until it is back.
        log.warning("throttle counts unavailable (%s): %s requests are not limited meanwhile", exc, self.scope)
        return 0

    def _hit(self, ident: str) -> int:
        cache, key = caches[CACHE], self._key(ident)
        if isinstance(cache, RedisCache):  # one round trip: INCR, and the expiry when the key is new
            redis_key = cache.make_and_validate_key(key)
            pipe = cache._cache.get_client(redis_key, write=True).pipeline(transaction=False)
            pipe.incr(redis_key)
            pipe.expire(redis_key, self.window + 1, nx=True)
            return pipe.execute()[0]
        try:
            return cache.incr(key)
        except ValueError:  # the window's first request (or its key was evicted)
            if cache.add(key, 1, timeout=self.window + 1):
                return 1
            return cache.incr(key)  # another process added it first

    def allow_request(self, request, view) -> bool:
        if self.limit is None:
            return True
        ident = self.ident(request)
        return ident is None or self.hit(ident) <= self.limit

    def wait(self) -> float:
        return max(1, math.ceil(self.reset_at - self.timer()))


class AnonThrottle(WindowThrottle):
    """Requests without a user, per client address."""

    scope = "anon"

    def ident(self, request) -> str | None:
        return None if request.user and request.user.is_authenticated else client_ip(request)


class UserThrottle(WindowThrottle):
    """Requests per signed-in user (token or session), whatever address they come from."""

    scope = "user"

    def ident(self, request) -> str | None:
        return str(request.user.pk) if request.user and request.user.is_authenticated else None


class TokenFailureThrottle(WindowThrottle):
    """Failed token checks per client address. Once over the limit, that address gets 429 before any token
    is looked at (a right guess would otherwise still answer 200), until the window ends."""

    scope = "token_failure"

    def check(self, request) -> None:
        if self.limit is not None and self.count(client_ip(request)) >= self.limit:
            raise exceptions.Throttled(
                self.wait(),
                detail="Too many requests with an invalid token from this address.",
            )

    def record_failure(self, request) -> None:
        if self.limit is not None:
            self.hit(client_ip(request))


def login_lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login: a page, or JSON for a script, both with Retry-After.

    Every attempt during the lockout starts the cool-off again (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT),
    so "try again in N minutes" holds from the moment of this answer.
    """
    from axes.helpers import get_client_username, get_cool_off

    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    minutes = math.ceil(seconds / 60) if seconds else None
    message = "Too many failed logins for this account from your address. " + (
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}." if minutes else "Ask an admin to unlock it."
    )
    status = settings.AXES_HTTP_RESPONSE_CODE
    wants_json = (
        request.path.startswith("/api/")
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
        or "application/json" in request.headers.get("Accept", "")
    )
    if wants_json:
        response = JsonResponse(
            {"error": message, "detail": {"retry_after": seconds, "failure_limit": settings.AXES_FAILURE_LIMIT}},
            status=status,
        )
    else:
        username = get_client_username(request, credentials) or ""
        response = render(request, "registration/locked.html",
                          {"message": message, "minutes": minutes, "username": username}, status=status)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
