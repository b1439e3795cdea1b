"""The API's rate limits: per source address and per API key, counted in a fixed window
of a minute, answered 429 `rate_limited` with `Retry-After` (seconds to the next window).

The address limit applies to every request under `/api/v1/` before anything else runs
(`limited`, wrapped around each URL's view by `iamportal.api`), so a flood of bad or
missing keys is limited too; the key limit applies once a key authenticated
(`check_key`, from `organizations.api.auth`), before the operation runs.

The counts live in the database (iamportal.ratelimit: one row per address or key), so
every process and every server shares one count, with nothing to run beyond the
database. Each process adds its requests to them in one atomic statement whenever they
could matter (`ratelimit.spend`): on a bucket's first request in a window, at least once
a second, and on every request once the limit is near; most requests of a client far
from its limit cost no statement. A fixed window lets a client spend up to twice the
limit across a window's boundary.

Limits come from `API_RATE_PER_KEY` and `API_RATE_PER_IP` (requests a minute; 0 turns
that limit off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from iamportal import api_errors, ratelimit
from iamportal.api_errors import APIError
from iamportal.request import client_ip

WINDOW_SECONDS = 60


class RateLimited(APIError):
    """Over a limit: 429 in the one error shape, with `Retry-After`."""

    def __init__(self, scope: str, limit: int, retry_after: int) -> None:
        who = "this API key" if scope == "key" else "this address"
        super().__init__(
            429,
            "rate_limited",
            f"Too many requests from {who}: at most {limit} a minute. "
            f"Retry in {retry_after} seconds.",
            {"scope": scope, "limit": limit, "window_seconds": WINDOW_SECONDS},
        )
        self.retry_after = retry_after


def _now() -> float:
    """The clock of the windows (tests move it)."""
    return time.time()


def _count(scope: str, ident: str, limit: int) -> None:
    """Count one request of `ident` in the current window; raise `RateLimited` when it
    is over `limit` (refused requests count too: a client that keeps hammering stays
    refused until the window ends)."""
    if limit <= 0:
        return
    within, retry_after = ratelimit.spend(
        f"api:{scope}:{ident}", limit=limit, window_seconds=WINDOW_SECONDS, now=_now()
    )
    if not within:
        raise RateLimited(scope, limit, retry_after)


def check_address(request: HttpRequest) -> None:
    """Count the request against its source address (behind trusted proxies, the
    client's); raises `RateLimited`."""
    _count("ip", client_ip(request) or "unknown", settings.API_RATE_PER_IP)


def check_key(api_key: Any) -> None:
    """Count the request against the API key that authenticated it; raises `RateLimited`."""
    _count("key", str(api_key.pk), settings.API_RATE_PER_KEY)


def response(api: NinjaAPI, request: HttpRequest, exc: RateLimited) -> HttpResponse:
    answer = api_errors.error_response(api, request, exc.status, exc.code, exc.message, exc.details)
    answer["Retry-After"] = str(exc.retry_after)
    return answer


def install(api: NinjaAPI) -> None:
    """Answer `RateLimited` raised inside an operation (the key limit) with `Retry-After`."""
    api.add_exception_handler(RateLimited, lambda request, exc: response(api, request, exc))


def limited(api: NinjaAPI, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view` behind the address limit: over it, the 429 answer and the view never runs.
    Keeps the view's attributes (CSRF exemption, access declaration)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            check_address(request)
        except RateLimited as exc:
            return response(api, request, exc)
        return view(request, *args, **kwargs)

    return wrapper
