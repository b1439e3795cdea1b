"""Disabling what goes unused (#16): with the security setting
`Organization.disable_unused_after_days` (N, off by default), `manage.py disable_unused`
disables the API keys and suspends the members left unused for N days.

- An API key is unused when neither its last use (`last_used_at`, or `created_at` when
  never used) nor its last re-enabling (`enabled_at`) falls within the N days. It is
  disabled, not deleted (`api_key_disable`): re-enabling it is one click on its page.
- A member (never an owner) is unused when they joined more than N days ago and have not
  signed in (`User.last_login`, across every organization of the account) nor used one of
  their API keys of this organization within the N days, nor been reactivated within
  them (read from the audit trail, kept at least a week). They are suspended: they keep
  their groups and policies, and reactivating them gives everything back.

Each change is its own transaction and audit event, by the system (no actor), with the
reason "unused for N days"; each re-checks its subject under a lock, so a key used or a
member signed in meanwhile is left alone, and running it again changes nothing more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from organizations.models import APIKey, Membership, Organization
from organizations.services.api_keys import api_key_disable
from organizations.services.people import lock_organization, membership_suspend


@dataclass
class Disabled:
    """What one organization's sweep changed: access keys, and members' emails."""

    organization: Organization
    keys: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


def unused_reason(days: int) -> str:
    return f"unused for {days} days"


def _unused_keys(organization: Organization, cutoff: dt.datetime) -> QuerySet[APIKey]:
    return APIKey.objects.filter(
        Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff),
        Q(enabled_at__isnull=True) | Q(enabled_at__lt=cutoff),
        organization=organization,
        disabled_at__isnull=True,
    )


def _unused_members(organization: Organization, cutoff: dt.datetime) -> QuerySet[Membership]:
    used_key = APIKey.objects.filter(bearer_membership=OuterRef("pk"), last_used_at__gte=cutoff)
    return (
        Membership.objects.filter(
            Q(user__last_login__isnull=True) | Q(user__last_login__lt=cutoff),
            organization=organization,
            is_owner=False,
            status=Membership.Status.ACTIVE,
            created_at__lt=cutoff,
        )
        .exclude(Exists(used_key))
        .select_related("user")
    )


def _reactivated_since(organization: Organization, cutoff: dt.datetime) -> set[str]:
    """Memberships (ids) reactivated within the window: a reactivation is a fresh start."""
    return set(
        AuditEvent.objects.filter(
            organization=organization,
            action=events.USER_REACTIVATED.name,
            occurred_at__gte=cutoff,
        ).values_list("target_id", flat=True)
    )


def organization_disable_unused(
    *, organization: Organization, now: dt.datetime | None = None
) -> Disabled:
    """Disable the organization's unused keys and suspend its unused members (see the
    module's docstring); nothing when its setting is off."""
    done = Disabled(organization)
    days = organization.disable_unused_after_days
    if days is None:
        return done
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    reason = unused_reason(days)
    for pk in _unused_keys(organization, cutoff).values_list("pk", flat=True).iterator():
        with transaction.atomic():
            # Locked and checked again: a key used since the query stays enabled.
            api_key = _unused_keys(organization, cutoff).select_for_update().filter(pk=pk).first()
            if api_key is not None:
                api_key_disable(api_key=api_key, actor=None, reason=reason)
                done.keys.append(api_key.access_key)
    reactivated = _reactivated_since(organization, cutoff)
    members = _unused_members(organization, cutoff).values_list("pk", flat=True)
    for pk in members.iterator():
        if str(pk) not in reactivated and (
            email := _suspend_unused(organization, pk, cutoff, reason)
        ):
            done.members.append(email)
    return done


@transaction.atomic
def _suspend_unused(
    organization: Organization, membership_id: object, cutoff: dt.datetime, reason: str
) -> str | None:
    """Suspend the member by the system if still unused once locked (the organization
    first, as every membership change locks it); returns their email, or None when they
    were left alone."""
    organization = lock_organization(organization)
    membership = (
        _unused_members(organization, cutoff)
        .select_for_update(of=("self",))
        .filter(pk=membership_id)
    ).first()
    if membership is None:
        return None
    membership_suspend(membership=membership, actor=None, reason=reason)
    return membership.user.email
