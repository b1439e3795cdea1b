"""Sign-ins, sign-outs, failed sign-ins and lock-outs go to the audit trail."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.lockout import attempted_email, record_lockout
from accounts.sessions import session_mark_started, session_track
from accounts.sudo import sudo_grant
from audit import events
from audit.services import record


@receiver(user_logged_in)
def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(action=events.ACCOUNT_SIGNED_IN, actor=user, target=user, request=request)
    if request is not None and hasattr(request, "session"):
        # Signing in is a fresh confirmation, and the start of the session's age.
        session_mark_started(request)
        sudo_grant(request, user)
        session_track(request, user=user)


@receiver(user_logged_out)
def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(action=events.ACCOUNT_SIGNED_OUT, actor=user, target=user, request=request)


@receiver(user_login_failed)
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    # The attempted address is kept as a label only; no account is linked or revealed.
    attempted = attempted_email(request, credentials)
    record(action=events.ACCOUNT_SIGN_IN_FAILED, target_label=attempted, request=request)


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any = None, username: Any = None, **kw: Any) -> None:
    record_lockout(request, username)
