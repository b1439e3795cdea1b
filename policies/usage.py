"""Permission usage (#16): when each principal was last allowed and last denied each action,
per project (`PermissionUsage`).

Every decision of the console's and the API's guards (`policies.authz.authorize`) and of
`POST /api/v1/authorize` is noted here: a dictionary update in this process, no query.
The notes are written in batches, ONE upsert statement per batch of up to `BATCH` rows
keeping the latest time of each row, so several processes (and servers) noting the same
key at once end with the latest of each time, whichever writes last.

When: `settings.USAGE_FLUSH_SECONDS` (`IAMPORTAL_USAGE_FLUSH_SECONDS`, default 30) by a
daemon thread of each process, started on its first note (after a server's fork), plus at
a clean exit (`atexit`) and whenever more than `MAX_PENDING` keys wait. A crash loses at
most the last interval's notes. 0 writes on every note; None notes nothing (the test
suite, whose query counts would otherwise change; tests/policies/test_usage.py turns it on).
A failed write never reaches a request: it is logged and its rows wait for the next one.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Max
from django.utils import timezone

from organizations.models import Application, Membership
from policies.evaluator import Decision
from policies.models import NO_PROJECT, PermissionUsage

logger = logging.getLogger(__name__)

MAX_PENDING = 10_000  # keys waiting in one process before a note writes them at once
# While the database refuses the writes, new keys past this many are dropped (logged) rather
# than let memory grow, and a crowded note tries again at most once per `RETRY_SECONDS`.
MAX_KEPT = 10 * MAX_PENDING
RETRY_SECONDS = 30.0
BATCH = 1_000  # rows a statement (7 parameters each: well under every database's limit)

# (organization id, principal type, principal id, action, project id or "") -> the latest
# time allowed and the latest time denied noted since the last write (None: not noted).
Key = tuple[str, str, str, str, str]
_pending: dict[Key, list[dt.datetime | None]] = {}
_lock = threading.Lock()
_flush_lock = threading.Lock()  # one write at a time per process
_flusher_pid: int | None = None  # the process whose flushing thread runs
_retry_at = 0.0  # time.monotonic() before which a crowded note does not write
_dropping = False  # new keys are being dropped (logged once until a write succeeds)


def note(
    organization_id: object,
    principal_type: str,
    principal_id: object,
    action: str,
    project_id: object,
    allowed: bool,
    at: dt.datetime | None = None,
) -> None:
    """Note one decision (a dictionary update; see the module's docstring for the write)."""
    seconds = settings.USAGE_FLUSH_SECONDS
    if seconds is None:
        return
    key = (str(organization_id), principal_type, str(principal_id), action, str(project_id or ""))
    at = at or timezone.now()
    slot = 0 if allowed else 1
    global _dropping
    with _lock:
        times = _pending.get(key)
        if times is None:
            if len(_pending) >= MAX_KEPT:
                if not _dropping:
                    _dropping = True
                    logger.warning("Permission usage dropped: %d rows wait already", MAX_KEPT)
                return
            times = _pending[key] = [None, None]
        if times[slot] is None or at > times[slot]:  # type: ignore[operator]
            times[slot] = at
        crowded = len(_pending) > MAX_PENDING and time.monotonic() >= _retry_at
    if seconds == 0 or crowded:
        flush()
    elif _flusher_pid != os.getpid():
        _start_flusher(seconds)


def note_decision(subject: Membership | Application, decision: Decision) -> None:
    """Note a decision about a membership (as its user) or an application; decisions on
    actions outside the catalogue are not usage of anything."""
    if decision.reason == "unknown_action":
        return
    if isinstance(subject, Application):
        kind, ident = "application", subject.pk
    else:
        kind, ident = "user", subject.user_id
    note(
        subject.organization_id,
        kind,
        ident,
        decision.action,
        decision.project_id,
        decision.allowed,
    )


_UPSERT = {
    "postgresql": (
        "INSERT INTO {table} AS t (organization_id, principal_type, principal_id, action, "
        "project_id, last_allowed_at, last_denied_at) VALUES {rows} "
        "ON CONFLICT (organization_id, principal_type, principal_id, action, project_id) "
        "DO UPDATE SET "
        "last_allowed_at = GREATEST(COALESCE(t.last_allowed_at, EXCLUDED.last_allowed_at), "
        "EXCLUDED.last_allowed_at), "
        "last_denied_at = GREATEST(COALESCE(t.last_denied_at, EXCLUDED.last_denied_at), "
        "EXCLUDED.last_denied_at)"
    ),
    # SQLite's max() is NULL when any argument is; times are ISO text, ordered as text.
    "sqlite": (
        "INSERT INTO {table} (organization_id, principal_type, principal_id, action, "
        "project_id, last_allowed_at, last_denied_at) VALUES {rows} "
        "ON CONFLICT (organization_id, principal_type, principal_id, action, project_id) "
        "DO UPDATE SET "
        "last_allowed_at = COALESCE(max({table}.last_allowed_at, excluded.last_allowed_at), "
        "{table}.last_allowed_at, excluded.last_allowed_at), "
        "last_denied_at = COALESCE(max({table}.last_denied_at, excluded.last_denied_at), "
        "{table}.last_denied_at, excluded.last_denied_at)"
    ),
}


def flush() -> int:
    """Write every pending note, ONE statement per batch, each in its own transaction (a
    savepoint inside a caller's); returns the rows written. Never raises: a failed batch is
    logged and its rows wait for the next flush."""
    global _retry_at, _dropping
    with _flush_lock:
        with _lock:
            taken = list(_pending.items())
            _pending.clear()
        written = 0
        for start in range(0, len(taken), BATCH):
            batch = taken[start : start + BATCH]
            try:
                with transaction.atomic():
                    _write(batch)
            except Exception:  # whatever it is, a request or the thread must go on
                logger.warning("Writing permission usage failed; kept for later", exc_info=True)
                _restore(batch)
                _retry_at = time.monotonic() + RETRY_SECONDS
            else:
                written += len(batch)
                _dropping = False
        return written


def _write(batch: list[tuple[Key, list[dt.datetime | None]]]) -> None:
    fields = {f.attname: f for f in PermissionUsage._meta.concrete_fields}

    def prep(name: str, value: object) -> object:
        return fields[name].get_db_prep_value(value, connection)

    params: list[object] = []
    for (organization_id, kind, principal_id, action, project_id), times in batch:
        params += [
            prep("organization_id", uuid.UUID(organization_id)),
            kind,
            prep("principal_id", uuid.UUID(principal_id)),
            action,
            prep("project_id", uuid.UUID(project_id) if project_id else NO_PROJECT),
            prep("last_allowed_at", times[0]),
            prep("last_denied_at", times[1]),
        ]
    sql = _UPSERT["postgresql" if connection.vendor == "postgresql" else "sqlite"].format(
        table=PermissionUsage._meta.db_table,
        rows=", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(batch)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _restore(batch: Iterable[tuple[Key, list[dt.datetime | None]]]) -> None:
    """Put unwritten rows back, merged with any noted since (the latest time wins)."""
    with _lock:
        for key, times in batch:
            current = _pending.setdefault(key, [None, None])
            for slot in (0, 1):
                if times[slot] is not None and (
                    current[slot] is None or times[slot] > current[slot]  # type: ignore[operator]
                ):
                    current[slot] = times[slot]


def pending_count() -> int:
    with _lock:
        return len(_pending)


def forget() -> None:
    """Drop this process' unwritten notes (tests)."""
    with _lock:
        _pending.clear()


def _start_flusher(seconds: int) -> None:
    global _flusher_pid
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    thread = threading.Thread(
        target=_flush_every, args=(seconds,), name="permission-usage", daemon=True
    )
    thread.start()


def _flush_every(seconds: int) -> None:
    while True:
        time.sleep(seconds)
        try:
            if pending_count():
                flush()
        finally:
            # The thread's own connection: closed between flushes rather than held idle.
            connections.close_all()


@atexit.register
def _flush_at_exit() -> None:
    if pending_count():
        flush()


_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def last_allowed(
    organization_id: object, principal_type: str, principal_id: object
) -> dict[str, dt.datetime]:
    """When the principal was last allowed each action it was ever allowed, in any project:
    ONE query, with this process' unwritten notes."""
    rows = (
        PermissionUsage.objects.filter(
            organization_id=organization_id,
            principal_type=principal_type,
            principal_id=principal_id,
            last_allowed_at__isnull=False,
        )
        .values("action")
        .annotate(last=Max("last_allowed_at"))
        .order_by()
    )
    used = {row["action"]: row["last"] for row in rows}
    prefix = (str(organization_id), principal_type, str(principal_id))
    with _lock:
        for key, (allowed_at, _) in _pending.items():
            action = key[3]
            if (
                key[:3] == prefix
                and allowed_at is not None
                and allowed_at > used.get(action, _NEVER)
            ):
                used[action] = allowed_at
    return used


def used_words(at: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """'used today', 'used 12 days ago', 'never used'."""
    if at is None:
        return "never used"
    now = now or timezone.now()
    days = (timezone.localdate(now) - timezone.localdate(at)).days
    if days <= 0:
        return "used today"
    return "used yesterday" if days == 1 else f"used {days} days ago"
