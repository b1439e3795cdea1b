"""An account's own events (sign-ins, sign-outs, second factor, lock-outs) in the trails
of the organizations the person belongs to.

An account is not one organization's object, yet each organization must see its people
sign in, fail their codes, set up or remove MFA: one event per organization where the
account has an active membership, each in that organization's hash chain. An account
in no organization, and an email that names no account, get one event with no
organization (operators see it in the admin).

A person can join any number of organizations, and each sign-in must not write that many
rows: at most `MAX_ORGANIZATIONS` organizations get the event (the oldest memberships
first), and one event with no organization says how many were left out.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.emails import canonical_email_or_none
from accounts.models import User
from audit import events
from audit.services import record
from organizations.models import Membership, Organization

MAX_ORGANIZATIONS = 50


def account_for_email(email: str | None) -> User | None:
    """The account a typed email names, if any (the email is canonicalised first)."""
    canonical = canonical_email_or_none(email or "")
    return User.objects.filter(email=canonical).first() if canonical else None


def _organizations_of(account: User) -> tuple[list[Organization], int]:
    """The organizations to record in (oldest membership first), and how many are left out."""
    memberships = Membership.objects.active().filter(user=account)
    chosen = list(
        Organization.objects.filter(
            memberships__in=memberships.order_by("created_at", "pk")[:MAX_ORGANIZATIONS]
        )
    )
    left_out = 0
    if len(chosen) == MAX_ORGANIZATIONS:
        left_out = memberships.count() - MAX_ORGANIZATIONS
    return chosen, left_out


@transaction.atomic
def record_account_event(
    *,
    action: events.EventType,
    account: User | None,
    request: HttpRequest | None,
    actor: User | None = None,
    target_label: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Record `action` about `account` (the target) in each of its organizations' trails.

    `actor` is the account when the person acted (signed in, enrolled), None when nobody
    did (a wrong password or code, a lock-out). `account` None (an email naming no
    account) records one event with no organization, labelled `target_label`.
    """
    organizations, left_out = _organizations_of(account) if account is not None else ([], 0)
    fields: dict[str, Any] = {
        "action": action,
        "actor": actor,
        "target": account,
        "target_label": target_label,
        "request": request,
    }
    # Chain heads are locked in one order, so two such transactions never deadlock.
    for organization in sorted(organizations, key=lambda o: str(o.pk)):
        record(organization=organization, data=data, **fields)
    if not organizations:
        record(data=data, **fields)
    elif left_out:
        record(data={**(data or {}), "organizations_left_out": left_out}, **fields)
