"""Signed-in sessions: tracking, listing and ending them.

Ending a session deletes it from Django's session store, so the browser holding it is
signed out on its next request.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User, UserSession
from accounts.trail import record_account_event
from audit import events
from iamportal.request import client_ip, client_user_agent

# Unix time of the sign-in, set when the session signs in (accounts.signals).
STARTED_KEY = "_session_started"
# When this session last wrote its UserSession row, and for which session key.
_SEEN_KEY = "_session_seen"
TOUCH_INTERVAL = 60  # seconds: the row's last_seen_at moves at most once a minute


def _store(session_key: str | None = None) -> SessionBase:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def _fingerprint(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


def session_started_at(request: HttpRequest) -> float | None:
    value = request.session.get(STARTED_KEY)
    return float(value) if isinstance(value, int | float) else None


def session_mark_started(request: HttpRequest) -> None:
    request.session[STARTED_KEY] = time.time()


def session_track(request: HttpRequest, user: User | None = None) -> None:
    """Record or refresh the request's session row, at most once a minute per session."""
    user = user if user is not None else getattr(request, "user", None)
    session = getattr(request, "session", None)
    if user is None or session is None or not user.is_authenticated:
        return
    key = session.session_key
    if not key:
        return
    now = time.time()
    seen = session.get(_SEEN_KEY)
    fingerprint = _fingerprint(key)
    if (
        isinstance(seen, dict)
        and seen.get("k") == fingerprint
        and now - float(seen.get("t", 0)) < TOUCH_INTERVAL
    ):
        return
    started = session_started_at(request)
    if started is None:
        started = now
        session[STARTED_KEY] = started
    seen_now = {
        "user": user,
        "ip": client_ip(request),
        "user_agent": client_user_agent(request),
        "last_seen_at": timezone.now(),
    }
    UserSession.objects.update_or_create(
        session_key=key,
        defaults=seen_now,
        create_defaults={**seen_now, "created_at": datetime.fromtimestamp(started, tz=UTC)},
    )
    session[_SEEN_KEY] = {"k": fingerprint, "t": now}


def _is_live(data: dict[str, Any] | None, user: User) -> bool:
    """A session's data still exists and still belongs to the user's current password."""
    if not data or str(data.get("_auth_user_id")) != str(user.pk):
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


def _data_of(session_keys: list[str]) -> dict[str, dict[str, Any]]:
    """The data of the live sessions among `session_keys`: one query with the database
    engines (a user may hold many sessions), one load each with the others."""
    store = _store()
    if not hasattr(store, "get_model_class"):
        return {key: _store(key).load() for key in session_keys}
    rows = store.get_model_class().objects.filter(
        session_key__in=session_keys, expire_date__gt=timezone.now()
    )
    return {row.session_key: store.decode(row.session_data) for row in rows}


def sessions_of(user: User) -> list[UserSession]:
    """The user's live sessions, newest activity first; rows of dead sessions are pruned.

    A session dies by sign-out, expiry, or a password change (Django refuses a session
    whose password hash no longer matches).
    """
    live: list[UserSession] = []
    dead: list[object] = []
    rows = list(UserSession.objects.filter(user=user))
    data = _data_of([row.session_key for row in rows])
    for row in rows:
        if _is_live(data.get(row.session_key), user):
            live.append(row)
        else:
            dead.append(row.pk)
    if dead:
        UserSession.objects.filter(pk__in=dead).delete()
    return live


def _end(row: UserSession) -> None:
    _store().delete(row.session_key)
    row.delete()


@transaction.atomic
def session_end(*, user: User, session_id: object, request: HttpRequest) -> UserSession:
    """End one of the user's sessions (another user's session is 404)."""
    try:
        row = UserSession.objects.get(user=user, pk=session_id)
    except (UserSession.DoesNotExist, ValueError, TypeError):
        raise Http404("No such session.") from None
    current = row.session_key == _key(request)
    if current:
        # The caller signs this browser out with logout(): deleting the session under the
        # running request would make its end-of-request save fail.
        row.delete()
    else:
        _end(row)
    record_account_event(
        action=events.AUTH_SESSION_ENDED,
        account=user,
        actor=user,
        data={"ip": row.ip, "device": row.device, "current": current},
        request=request,
    )
    return row


def _key(request: HttpRequest | None) -> str | None:
    return request.session.session_key if request is not None else None


def sessions_end_others(*, user: User, keep: str | None) -> int:
    """End every tracked session of the user but `keep` (a session key); returns how many.

    Every signed-in session is tracked from the response that signed it in.
    """
    count = 0
    for row in UserSession.objects.filter(user=user).exclude(session_key=keep or ""):
        _end(row)
        count += 1
    return count


@transaction.atomic
def sessions_end_all_other(*, user: User, request: HttpRequest) -> int:
    """The account page's "End all other sessions"."""
    count = sessions_end_others(user=user, keep=_key(request))
    record_account_event(
        action=events.AUTH_SESSIONS_ENDED,
        account=user,
        actor=user,
        data={"ended": count},
        request=request,
    )
    return count
