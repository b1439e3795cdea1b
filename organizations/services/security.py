"""Writes to the organization's security settings and to members' MFA state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import mfa
from accounts.models import User
from accounts.sessions import sessions_end_others
from audit import events
from audit.services import record
from organizations.models import Membership, Organization
from organizations.services.organizations import organization_bump_authz_version
from organizations.services.people import check_may_act_on

SECURITY_FIELDS = (
    "mfa_required",
    "mfa_grace_days",
    "login_failure_limit",
    "session_max_age_hours",
    "api_key_max_lifetime_days",
    "disable_unused_after_days",
    "invitation_domains",
    "audit_retention_days",
)


MFAState = Literal["ok", "grace", "locked", "verify"]


@dataclass(frozen=True)
class MFAStatus:
    state: MFAState
    deadline: datetime | None = None


def membership_mfa_deadline(membership: Membership) -> datetime | None:
    """When this member must have MFA set up; None when the organization does not ask."""
    organization = membership.organization
    if not organization.mfa_required:
        return None
    since = organization.mfa_required_since or organization.updated_at
    start = max(since, membership.created_at)
    deadline = start + timedelta(days=organization.mfa_grace_days)
    if membership.mfa_grace_until and membership.mfa_grace_until > deadline:
        deadline = membership.mfa_grace_until
    return deadline


def mfa_status(
    *, membership: Membership, verified: bool, enrolled: bool, now: datetime | None = None
) -> MFAStatus:
    """What the MFA requirement means for this member's request right now."""
    if not membership.organization.mfa_required or verified:
        return MFAStatus("ok")
    deadline = membership_mfa_deadline(membership)
    if enrolled:
        return MFAStatus("verify", deadline)
    if deadline is not None and (now or timezone.now()) < deadline:
        return MFAStatus("grace", deadline)
    return MFAStatus("locked", deadline)


def _value(organization: Organization, field: str) -> Any:
    value = getattr(organization, field)
    return list(value) if isinstance(value, list) else value


@transaction.atomic
def organization_update_security(
    *,
    organization: Organization,
    actor: User,
    request: HttpRequest | None = None,
    **values: Any,
) -> list[str]:
    """Change security settings; returns the names of the fields that changed.

    Switching MFA on starts every member's grace period now. Each change is one audit
    event with the before and after values of the changed fields.
    """
    unknown = set(values) - set(SECURITY_FIELDS)
    if unknown:
        raise ValueError(f"Not security settings: {sorted(unknown)}")
    # Read what is stored: a bound ModelForm has already changed the instance in memory.
    current = Organization.objects.select_for_update().get(pk=organization.pk)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in values.items():
        if _value(current, field) != value:
            before[field] = _value(current, field)
            after[field] = value
            setattr(current, field, value)
    if not after:
        return []
    update_fields = [*after, "updated_at"]
    if "mfa_required" in after:
        current.mfa_required_since = timezone.now() if current.mfa_required else None
        update_fields.append("mfa_required_since")
    current.full_clean(exclude=[f.name for f in Organization._meta.fields if f.name not in after])
    current.save(update_fields=update_fields)
    # The maximum key lifetime (and MFA's requirement) decide who may call: every process
    # drops the organization's cached keys (organizations.services.api_keys).
    organization_bump_authz_version(organization=current)
    record(
        action=events.ORGANIZATION_SECURITY_UPDATED,
        organization=current,
        actor=actor,
        target=current,
        data={"before": before, "after": after},
        request=request,
    )
    # The caller's instance reflects what is stored (templates read it after the write).
    for field in update_fields:
        setattr(organization, field, getattr(current, field))
    return list(after)


def _check_may_manage_mfa_of(membership: Membership, actor: User, verb: str) -> None:
    """Nobody manages their own MFA from the IAM pages, and only owners manage an owner's
    (the rule of suspending or removing them)."""
    if membership.user_id == actor.pk:
        raise ValidationError("Manage your own MFA from your account's MFA page.")
    actor_membership = Membership.objects.filter(
        organization_id=membership.organization_id, user=actor
    ).first()
    if actor_membership is None:
        raise PermissionDenied(f"{actor.email} is not a member of this organization.")
    check_may_act_on(membership, actor_membership, verb)


@transaction.atomic
def member_mfa_reset(
    *, membership: Membership, actor: User, request: HttpRequest | None
) -> datetime:
    """Delete the member's authenticator and backup codes and end all their sessions.

    Only accounts this organization manages (its members) can be reset, and an owner's
    MFA only by another owner: a guest's account is theirs, used in other organizations.
    The member gets a fresh grace period to set up a new authenticator; returns its end.
    """
    organization = membership.organization
    target = membership.user
    _check_may_manage_mfa_of(membership, actor, "reset the MFA of")
    if not membership.is_owner and target.managed_by_id != organization.pk:
        raise ValidationError(
            f"{target.email} is a guest: their account is not managed by {organization.name}. "
            "They can sign in with a backup code and set up a new authenticator."
        )
    had_mfa = mfa.has_mfa(target)
    mfa.mfa_devices_delete(user=target)
    ended = sessions_end_others(user=target, keep=None)
    membership.mfa_grace_until = _new_grace(organization)
    membership.save(update_fields=["mfa_grace_until"])
    record(
        action=events.IAM_USER_MFA_RESET,
        organization=organization,
        actor=actor,
        target=target,
        data={
            "had_mfa": had_mfa,
            "sessions_ended": ended,
            "mfa_grace_until": membership.mfa_grace_until.isoformat(),
        },
        request=request,
    )
    return membership.mfa_grace_until


def _new_grace(organization: Organization) -> datetime:
    return timezone.now() + timedelta(days=max(organization.mfa_grace_days, 1))


@transaction.atomic
def member_mfa_unlock(
    *, membership: Membership, actor: User, request: HttpRequest | None
) -> datetime:
    """Give a member locked for not setting up MFA a new deadline; returns it.

    Like a reset, never one's own (that would put off MFA for ever) and an owner's only
    by another owner.
    """
    _check_may_manage_mfa_of(membership, actor, "extend the MFA deadline of")
    organization = membership.organization
    before = membership.mfa_grace_until
    membership.mfa_grace_until = _new_grace(organization)
    membership.save(update_fields=["mfa_grace_until"])
    record(
        action=events.IAM_USER_MFA_UNLOCKED,
        organization=organization,
        actor=actor,
        target=membership.user,
        data={
            "before": {"mfa_grace_until": before.isoformat() if before else None},
            "after": {"mfa_grace_until": membership.mfa_grace_until.isoformat()},
        },
        request=request,
    )
    return membership.mfa_grace_until
