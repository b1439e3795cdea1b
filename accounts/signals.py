"""Sign-ins, sign-outs, failed sign-ins and lock-outs go to the audit trail of each
organization the account belongs to (accounts.trail)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.lockout import attempted_email, record_lockout
from accounts.sessions import session_mark_started, session_track
from accounts.sudo import sudo_grant
from accounts.trail import account_for_email, record_account_event
from audit import events


@receiver(user_logged_in)
def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record_account_event(action=events.ACCOUNT_SIGNED_IN, account=user, actor=user, request=request)
    if request is not None and hasattr(request, "session"):
        # Signing in is a fresh confirmation, and the start of the session's age.
        session_mark_started(request)
        sudo_grant(request, user)
        session_track(request, user=user)


@receiver(user_logged_out)
def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record_account_event(
            action=events.ACCOUNT_SIGNED_OUT, account=user, actor=user, request=request
        )


@receiver(user_login_failed)
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    # The page says the same whether the account exists; only its organizations' trails
    # (and operators, for an address naming no account) learn whose sign-in failed.
    if getattr(request, "axes_locked_out", False):
        return  # refused unread while locked out: the lock-out event says it, once a minute
    attempted = attempted_email(request, credentials)
    record_account_event(
        action=events.ACCOUNT_SIGN_IN_FAILED,
        account=account_for_email(attempted),
        target_label=attempted,
        request=request,
    )


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any = None, username: Any = None, **kw: Any) -> None:
    record_lockout(request, username)
