"""Sign-in lock-out with django-axes: thresholds, the refusal page, the audit event.

Thresholds (over the cool-off window, `AXES_COOLOFF_TIME`, 15 minutes by default):

- per account: the smallest "failed sign-ins before lock-out" among the organizations
  the account belongs to (3 to 20, default 5); an address that belongs to no account
  gets the default, 5, so by default a lock-out looks the same for real and unknown
  accounts;
- per IP address: `LOGIN_FAILURE_LIMIT_PER_IP` (20) failures whatever emails were tried,
  against password spraying, kept higher so one office behind one address is not locked
  out by a colleague's typos.

The refusal page says the same words in both cases and never names the account.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Min, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit import events
from audit.services import client_ip, record
from organizations.models import Membership

LOCKED_OUT_MESSAGE = (
    "Too many failed sign-in attempts. For your security, signing in is paused for "
    "{minutes} minutes. Try again later, or reset your password."
)


def attempted_email(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """The email typed, normalised as the account model stores it, so case cannot dodge."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        value = request.POST.get("username")
    return str(value or "").strip().lower()[:254]


def attempt_ip(request: HttpRequest) -> str:
    return client_ip(request) or "unknown"


def account_failure_limit(email: str) -> int:
    """The lock-out threshold of the account with this email (the default if none)."""
    default: int = settings.LOGIN_FAILURE_LIMIT_DEFAULT
    if not email:
        return default
    smallest = Membership.objects.filter(user__email__iexact=email).aggregate(
        limit=Min("organization__login_failure_limit")
    )["limit"]
    return smallest or default


def failure_limit(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    return account_failure_limit(attempted_email(request, credentials))


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with separate thresholds per account and per IP.

    Axes compares one number of failures with one limit; this handler reports the
    account's failures, or the account limit itself once the IP has reached its own.
    """

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        by_account, by_ip = self.get_user_attempts(request, credentials)
        account = by_account.aggregate(n=Sum("failures_since_start"))["n"] or 0
        ip = by_ip.aggregate(n=Sum("failures_since_start"))["n"] or 0
        if ip >= settings.LOGIN_FAILURE_LIMIT_PER_IP:
            return max(account, failure_limit(request, credentials))
        return account

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # A successful sign-in clears that account's failures only: signing in to one's own
        # account must not wipe the IP's count of failures against other accounts.
        email = attempted_email(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=email).delete()
        return count


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "accounts/locked_out.html",
        {"message": LOCKED_OUT_MESSAGE.format(minutes=minutes)},
        status=429,
    )


def record_lockout(request: HttpRequest | None, username: str | None) -> None:
    """Audit a refused sign-in; the typed email is a label, never linked to an account."""
    record(
        action=events.AUTH_LOGIN_LOCKED_OUT,
        target_label=(username or "")[:254],
        data={"ip": attempt_ip(request) if request is not None else None},
        request=request,
    )
