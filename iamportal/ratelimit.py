"""Fixed-window rate limits, counted in the database so every process and every server
shares one exact count: the API's limits (iamportal.api_ratelimit) and the condition
tester's (`within_limit`).

A count is ONE SQL statement, an upsert on the bucket's single row (`RateCounter`) that
adds one within the current window, or starts again at one when the row belongs to an
earlier window, and returns the new count. The database makes it atomic: concurrent
requests each get their own number, none is lost. It is raw SQL on the default
connection (nothing for the ORM to compile on every request) that PostgreSQL and SQLite
(3.35 or later, iamportal.apps checks) both run. Called inside a transaction it simply
joins it: it cannot fail on a conflict, so it never breaks the caller's transaction (the
count then commits or rolls back with it, and holds the row's lock until then; requests
count in autocommit, where neither matters).

A fixed window lets a client spend up to twice the limit across a window's boundary;
that is enough to hold a client to its order of magnitude, which is all it is for.
"""

from __future__ import annotations

import logging
import math
import time

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

# On the table of iamportal.models.RateCounter.
_COUNT = (
    "INSERT INTO iamportal_ratecounter (bucket, period_end, count) VALUES (%s, %s, 1) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "count = CASE WHEN iamportal_ratecounter.period_end = excluded.period_end "
    "THEN iamportal_ratecounter.count + 1 ELSE 1 END, "
    "period_end = excluded.period_end "
    "RETURNING count"
)
_PURGE = "DELETE FROM iamportal_ratecounter WHERE period_end < %s"

# Rows of ended windows are dead weight (the next count resets them anyway). Each process
# deletes them at most once a minute: one indexed DELETE then costs nothing per request,
# while the table stays bounded by the identities active in the last couple of minutes.
# A row is kept for a minute after its window ends, so a process whose clock runs a few
# seconds ahead never deletes a window that the others still count in.
PURGE_EVERY = 60.0
PURGE_GRACE = 60
_next_purge = 0.0  # time.monotonic() of this process' next purge


def count(bucket: str, *, window_seconds: int, now: float | None = None) -> tuple[int, int]:
    """Count one use of `bucket` (at most 200 characters) in the current window of
    `window_seconds`; returns the count so far, this use included, and the whole seconds
    until the window ends (at least 1). `now` is the wall clock (time.time() by default)."""
    if now is None:
        now = time.time()
    period_end = (int(now // window_seconds) + 1) * window_seconds
    with connection.cursor() as cursor:
        cursor.execute(_COUNT, [bucket, period_end])
        (used,) = cursor.fetchone()
    _maybe_purge(now)
    return used, max(1, math.ceil(period_end - now))


def within_limit(key: str, *, limit: int, window: int) -> bool:
    """Count one use of `key`; False once `limit` uses were already counted in the
    current `window` seconds (then the use is refused and still counted)."""
    used, _ = count(f"ratelimit:{key}", window_seconds=window)
    return used <= limit


def purge(now: float | None = None) -> int:
    """Delete the rows of windows that ended over `PURGE_GRACE` seconds ago; returns how
    many. In a savepoint when inside a transaction: a failure (say, a deadlock with another
    process' purge) must not abort the caller's transaction."""
    if now is None:
        now = time.time()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_PURGE, [int(now) - PURGE_GRACE])
        return cursor.rowcount


def _maybe_purge(now: float) -> None:
    global _next_purge
    if time.monotonic() < _next_purge:
        return
    _next_purge = time.monotonic() + PURGE_EVERY
    try:
        purge(now)
    except DatabaseError:  # the next purge will do: counting must not fail over it
        logger.warning("Purging old rate-limit counts failed", exc_info=True)
