"""Telling every process that an organization's authorization state changed.

`organization_bump_authz_version` announces each change in the writer's transaction
(`NOTIFY` on PostgreSQL, in the bump's own statement): PostgreSQL delivers it to every
listening process when the transaction commits, and never for a rollback. The writing
process hears it at once, on commit, without waiting for the database.

A process that keeps a cache which a version read on every request cannot protect (the
API keys' rows: reading the version would be the round trip the cache saves) listens on
one connection of its own, from a daemon thread started on first use (so after
gunicorn's fork). Notifications sent while that connection is down are lost, so such a
cache may serve an entry only while `listening()` still returns the generation it was
filled under: every (re)connection is a new generation. Without PostgreSQL there is no
LISTEN/NOTIFY: `listening()` is None and nothing may be cached that way.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from django.db import connections, transaction

CHANNEL = "iamportal_authz"
APPLICATION_NAME = "iamportal-listener"
# How long the listener waits for a notification before checking whether to stop.
_POLL_SECONDS = 1.0
_RECONNECT_SECONDS = 1.0
_HELLO_SECONDS = 5.0

logger = logging.getLogger(__name__)

# Called with an organization's pk (as text) for each change, or None for "forget
# everything" (the listener lost its connection).
_subscribers: list[Callable[[str | None], None]] = []


def subscribe(callback: Callable[[str | None], None]) -> None:
    """Call `callback(organization_pk)` on each announced change, `callback(None)` when
    changes may have been missed."""
    _subscribers.append(callback)


def deliver(payload: str | None) -> None:
    for callback in _subscribers:
        callback(payload)


def announce_on_commit(organization_pk: object) -> None:
    """This process forgets at once when the writer's transaction commits (other processes
    hear the NOTIFY)."""
    transaction.on_commit(lambda: deliver(str(organization_pk)))


class _Listener:
    """One LISTEN connection on a daemon thread; `generation` moves on every (re)connect
    and every loss."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.generation = 0
        self.connected = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="iamportal-listener", daemon=True)
        self._thread.start()

    def current(self) -> int | None:
        return self.generation if self.connected else None

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _set(self, connected: bool) -> None:
        with self._lock:
            self.generation += 1
            self.connected = connected
        deliver(None)

    def _run(self) -> None:
        import psycopg  # PostgreSQL's driver: a listener exists only on PostgreSQL

        params = connections["default"].get_connection_params()
        params.pop("cursor_factory", None)
        params["application_name"] = APPLICATION_NAME  # so operators can tell it apart
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Connected only once it hears itself: behind a pooler in transaction
                    # mode a LISTEN is not kept, and then nothing may be cached.
                    conn.execute("SELECT pg_notify(%s, '')", [CHANNEL])
                    heard = [n for n in conn.notifies(timeout=_HELLO_SECONDS, stop_after=1)]
                    if not heard or heard[0].payload != "":
                        raise RuntimeError("LISTEN does not hear its own NOTIFY")
                    self._set(connected=True)
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=_POLL_SECONDS):
                            if note.payload:  # "" is a listener saying hello
                                deliver(note.payload)
            except Exception:
                logger.warning("invalidation listener lost its connection", exc_info=True)
            finally:
                if self.connected:
                    self._set(connected=False)
            self._stopping.wait(_RECONNECT_SECONDS)


_listener: _Listener | None = None
_listener_lock = threading.Lock()


def listening() -> int | None:
    """The listener's generation while it is connected, else None (it is started on first
    call in each process, and never where the database is not PostgreSQL)."""
    global _listener
    listener = _listener
    if listener is None or listener.pid != os.getpid():
        if connections["default"].vendor != "postgresql":
            return None
        with _listener_lock:
            if _listener is None or _listener.pid != os.getpid():
                _listener = _Listener()
            listener = _listener
    return listener.current()


def stop_listening() -> None:
    """Stop this process's listener (tests, before their database is dropped)."""
    global _listener
    with _listener_lock:
        listener, _listener = _listener, None
    if listener is not None and listener.pid == os.getpid():
        listener.stop()
