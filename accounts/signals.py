"""Sign-ins, sign-outs and failed sign-ins go to the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit import events
from audit.services import record


@receiver(user_logged_in)
def _signed_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(action=events.ACCOUNT_SIGNED_IN, actor=user, target=user, request=request)


@receiver(user_logged_out)
def _signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(action=events.ACCOUNT_SIGNED_OUT, actor=user, target=user, request=request)


@receiver(user_login_failed)
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any
) -> None:
    # The attempted address is kept as a label only; no account is linked or revealed.
    attempted = str(credentials.get("username", ""))[:254]
    record(action=events.ACCOUNT_SIGN_IN_FAILED, target_label=attempted, request=request)
