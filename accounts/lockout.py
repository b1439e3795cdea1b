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

from accounts.emails import canonical_email_or_none
from accounts.trail import account_for_email, record_account_event
from audit import events
from audit.services import first_in_window, recorded_recently
from iamportal.request import client_ip, client_user_agent
from iamportal.text import one_line
from organizations.models import Membership

LOCKED_OUT_MESSAGE = (
    "Too many failed sign-in attempts. For your security, signing in is paused for "
    "{minutes} minutes. Try again later, or reset your password."
)


def attempted_email(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """The email typed, in the canonical form accounts are stored in, so that no spelling
    of one address has a counter of its own. Text with no canonical form (the sign-in
    form refuses it before any password is checked) is kept on one line, bounded."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        value = request.POST.get("username")
    text = str(value or "")
    return canonical_email_or_none(text) or one_line(text[:512]).lower()[:254]


def attempt_ip(request: HttpRequest) -> str:
    return client_ip(request) or "unknown"


def account_failure_limit(email: str) -> int:
    """The lock-out threshold of the account with this email (the default if none)."""
    default: int = settings.LOGIN_FAILURE_LIMIT_DEFAULT
    email = canonical_email_or_none(email)
    if not email:
        return default
    smallest = Membership.objects.filter(user__email=email).aggregate(
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

    def user_login_failed(
        self, sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        if request is not None:
            # Axes stores these headers as sent; NUL bytes would fail on PostgreSQL.
            request.axes_user_agent = client_user_agent(request)[:255]  # type: ignore[attr-defined]
            accept = request.META.get("HTTP_ACCEPT", "")[:2048]
            request.axes_http_accept = one_line(accept)[:1025]  # type: ignore[attr-defined]
        super().user_login_failed(sender, credentials, request, **kwargs)

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
    """Audit a refused sign-in, in the trails of the account's organizations when the
    typed email names one (the page never says so).

    At most once per typed email and minute: every attempt against a locked account is
    refused, and an attacker must not turn them into rows in each of its organizations.
    """
    label = (username or "")[:254]
    if not first_in_window(f"locked_out:{label}") or recorded_recently(
        action=events.AUTH_LOGIN_LOCKED_OUT, target_label=label
    ):
        return
    record_account_event(
        action=events.AUTH_LOGIN_LOCKED_OUT,
        account=account_for_email(username),
        target_label=label,
        data={"ip": attempt_ip(request) if request is not None else None},
        request=request,
    )
