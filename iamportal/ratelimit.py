"""Fixed-window rate limits, counted in the database so every process and every server
shares one count: the API's limits (iamportal.api_ratelimit, through `spend`) and the
condition tester's (`within_limit`, exact).

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

`spend`, on every API request, does not pay that statement each time: a process keeps a
tally per bucket and adds its uses to the shared row in one statement (`count(uses=…)`)
when they could matter. It asks the database on a bucket's first use in a window, at
least once a second (`SYNC_SECONDS`), and whenever its unsent uses exceed 1/`SHARE` of
what it last knew was left of the limit; so the closer a bucket is to its limit, the
more often it asks, and on the last few uses it asks every time. A request is refused
without asking when this process alone already knows the limit is spent (the shared
count can only be higher). One process is exact. Several processes counting one bucket at
the same instant may each admit up to an eighth of what they last saw left before asking
again, so a burst spread over them can pass the limit by a fraction of it; at most a
second later, each process asks again and sees the others' uses.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

# On the table of iamportal.models.RateCounter.
_COUNT = (
    "INSERT INTO iamportal_ratecounter (bucket, period_end, count) VALUES (%s, %s, %s) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "count = CASE WHEN iamportal_ratecounter.period_end = excluded.period_end "
    "THEN iamportal_ratecounter.count + excluded.count ELSE excluded.count END, "
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


def _period_end(now: float, window_seconds: int) -> int:
    return (int(now // window_seconds) + 1) * window_seconds


def count(
    bucket: str, *, window_seconds: int, now: float | None = None, uses: int = 1
) -> tuple[int, int]:
    """Count `uses` of `bucket` (at most 200 characters) in the current window of
    `window_seconds`; returns the count so far, these uses included, and the whole seconds
    until the window ends (at least 1). `now` is the wall clock (time.time() by default)."""
    if now is None:
        now = time.time()
    period_end = _period_end(now, window_seconds)
    with connection.cursor() as cursor:
        cursor.execute(_COUNT, [bucket, period_end, uses])
        (used,) = cursor.fetchone()
    _maybe_purge(now)
    return used, max(1, math.ceil(period_end - now))


SYNC_SECONDS = 1.0
SHARE = 8


@dataclass(slots=True)
class _Tally:
    """This process' view of one bucket in one window."""

    period_end: int
    known: int = 0  # the shared count at the last sync (this process' uses included)
    unsent: int = 0  # this process' uses since, not yet added to the shared count
    synced_at: float = -math.inf  # time.monotonic() of the last sync


_tallies: dict[str, _Tally] = {}
_tallies_lock = threading.Lock()


def spend(
    bucket: str, *, limit: int, window_seconds: int, now: float | None = None
) -> tuple[bool, int]:
    """Count one use of `bucket` against `limit` uses a window (see the module's
    docstring); returns whether it is within the limit and the whole seconds until the
    window ends. Refused uses count too."""
    if now is None:
        now = time.time()
    period_end = _period_end(now, window_seconds)
    retry_after = max(1, math.ceil(period_end - now))
    with _tallies_lock:
        tally = _tallies.get(bucket)
        if tally is None or tally.period_end != period_end:
            tally = _tallies[bucket] = _Tally(period_end)
        tally.unsent += 1
        used = tally.known + tally.unsent
        due = time.monotonic() - tally.synced_at >= SYNC_SECONDS or (
            used <= limit and tally.unsent * SHARE > limit - tally.known
        )
        if not due:
            return used <= limit, retry_after
        uses, tally.unsent = tally.unsent, 0
    try:
        shared, _ = count(bucket, window_seconds=window_seconds, now=now, uses=uses)
    except BaseException:
        with _tallies_lock:
            tally.unsent += uses  # sent with the next sync
        raise
    with _tallies_lock:
        tally.known = max(tally.known, shared)
        tally.synced_at = time.monotonic()
    return shared <= limit, retry_after


def forget_tallies() -> None:
    """Drop this process' tallies (tests that move the clock or the limits start afresh)."""
    with _tallies_lock:
        _tallies.clear()


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
    with _tallies_lock:
        for bucket in [bucket for bucket, tally in _tallies.items() if tally.period_end <= now]:
            del _tallies[bucket]
    try:
        purge(now)
    except DatabaseError:  # the next purge will do: counting must not fail over it
        logger.warning("Purging old rate-limit counts failed", exc_info=True)
