"""Writes to invitations: invite by email, resend, revoke, accept. Owner invitations are an
owner's alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.emails import canonical_email
from accounts.models import User
from accounts.tokens import new_token
from audit import events
from audit.models import AuditEvent
from audit.services import record
from organizations.models import Group, Invitation, Membership, Organization
from organizations.services.mail import absolute_url, send_email
from organizations.services.organizations import organization_bump_authz_version
from organizations.services.people import (
    ROLE_POLICIES,
    fresh_actor,
    lock_organization,
    require_joining_within_rights,
)
from policies.models import Policy, PolicyAttachment

INVITATION_LIFETIME = dt.timedelta(days=7)


MAX_INVITATIONS_AT_ONCE = 50


# Room for MAX_INVITATIONS_AT_ONCE addresses of the longest length and their separators;
# longer input is refused before it is parsed.
MAX_INVITATION_INPUT_CHARS = MAX_INVITATIONS_AT_ONCE * 256


# Invitation emails (sent or resent) per organization in any hour; at least
# MAX_INVITATIONS_AT_ONCE, so that one full batch can always be sent eventually.
INVITATION_EMAILS_PER_HOUR = 100


INVITATION_EMAIL_WINDOW = dt.timedelta(hours=1)


def parse_emails(text: str, *, limit: int = MAX_INVITATIONS_AT_ONCE) -> tuple[list[str], list[str]]:
    """Split a textarea of addresses (commas, semicolons, spaces, lines) into (valid,
    invalid): canonical (accounts.emails) and without duplicates, in the order typed.

    Linear in the input; more than `limit` distinct entries raise ValidationError
    before any of them is validated.
    """
    entries: dict[str, str] = {}  # lower-cased entry -> as typed
    for chunk in text.replace(",", " ").replace(";", " ").split():
        entries.setdefault(chunk.strip("<>").lower(), chunk)
        if len(entries) > limit:
            raise ValidationError(f"Invite at most {limit} people at a time.")
    valid: dict[str, None] = {}
    invalid: list[str] = []
    for typed in entries.values():
        try:
            valid[canonical_email(typed.strip("<>"))] = None
        except ValidationError:
            invalid.append(typed)
    return list(valid), invalid


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    link: str  # shown once to the inviter; only its digest is stored


def _invitation_link(request: HttpRequest | None, raw: str) -> str:
    return absolute_url(request, reverse("organizations:invitation_accept", kwargs={"token": raw}))


def _check_invitation_quota(organization: Organization, sending: int) -> None:
    """Refuse going over INVITATION_EMAILS_PER_HOUR for the organization. Each email sent
    is one audit event in the database, so the count holds across processes; the caller
    holds the organization's lock, so concurrent requests count one after the other."""
    sent = list(
        AuditEvent.objects.filter(
            organization=organization,
            action__in=[events.INVITATION_CREATED.name, events.INVITATION_RESENT.name],
            occurred_at__gt=timezone.now() - INVITATION_EMAIL_WINDOW,
        )
        .order_by("occurred_at")
        .values_list("occurred_at", flat=True)
    )
    excess = len(sent) + sending - INVITATION_EMAILS_PER_HOUR
    if excess > 0:
        # Once the `excess` oldest emails leave the window there is room (next minute).
        retry = timezone.localtime(sent[excess - 1] + INVITATION_EMAIL_WINDOW)
        retry += dt.timedelta(minutes=1)
        raise ValidationError(
            f"You can send {INVITATION_EMAILS_PER_HOUR} invitations per hour; "
            f"try again after {retry:%H:%M %Z}."
        )


def _check_may_handle(invitation: Invitation, actor: Membership, verb: str) -> None:
    """Only owners hand out ownership, so only they resend or revoke Owner invitations."""
    if invitation.role == Invitation.Role.OWNER and not actor.is_owner:
        raise ValidationError(f"Only owners can {verb} an invitation to become an owner.")


def _send_invitation(invitation: Invitation, link: str, inviter: User) -> None:
    send_email(
        to=invitation.email,
        subject=f"You are invited to join {invitation.organization.name} on IAM Portal",
        template="invitation",
        context={"invitation": invitation, "link": link, "inviter": inviter},
    )


@transaction.atomic
def invitations_create(
    *,
    organization: Organization,
    actor: Membership,
    emails: Sequence[str],
    role: str = "",
    groups: Iterable[Group] = (),
    request: HttpRequest | None = None,
) -> list[IssuedInvitation]:
    """Invite each address; all or nothing: one refused address refuses them all."""
    groups = list(groups)
    if not emails:
        raise ValidationError({"emails": "Enter at least one email address."})
    if len(emails) > MAX_INVITATIONS_AT_ONCE:
        raise ValidationError(
            {"emails": f"Invite at most {MAX_INVITATIONS_AT_ONCE} people at a time."}
        )
    if role not in Invitation.Role.values:
        raise ValidationError({"role": "Choose one of the offered roles."})
    lock_organization(organization)
    actor = fresh_actor(actor)
    if role == Invitation.Role.OWNER and not actor.is_owner:
        raise ValidationError({"role": "Only owners can invite new owners."})
    if any(group.organization_id != organization.pk for group in groups):
        raise ValidationError({"groups": "Choose groups of this organization."})
    problems = []
    members = set(
        Membership.objects.filter(organization=organization, user__email__in=emails).values_list(
            "user__email", flat=True
        )
    )
    pending = set(
        organization.invitations.filter(
            status=Invitation.Status.PENDING, email__in=emails
        ).values_list("email", flat=True)
    )
    for email in emails:
        if not organization.allows_invitation_to(email):
            domains = ", ".join(organization.invitation_domains)
            problems.append(f"{email}: invitations are limited to {domains}.")
        elif email in members:
            problems.append(f"{email} is already a member of {organization.name}.")
        elif email in pending:
            problems.append(f"{email} already has a pending invitation (resend it instead).")
    if problems:
        raise ValidationError({"emails": problems})
    require_joining_within_rights(
        organization=organization,
        actor=actor.user,
        request=request,
        role=role,
        groups=groups,
        principals=f"{len(emails)} invited {'person' if len(emails) == 1 else 'people'}",
    )
    _check_invitation_quota(organization, len(emails))
    now = timezone.now()
    issued: list[IssuedInvitation] = []
    for email in emails:
        raw, digest = new_token()
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            token_hash=digest,
            invited_by=actor.user,
            expires_at=now + INVITATION_LIFETIME,
        )
        invitation.groups.set(groups)
        link = _invitation_link(request, raw)
        record(
            action=events.INVITATION_CREATED,
            organization=organization,
            actor=actor.user,
            target=invitation,
            target_label=email,
            data={"role": role, "groups": [group.name for group in groups]},
            request=request,
        )
        issued.append(IssuedInvitation(invitation, link))
    # Emails leave only once the invitations are committed.
    for item in issued:
        transaction.on_commit(
            lambda item=item: _send_invitation(item.invitation, item.link, actor.user)
        )
    return issued


@transaction.atomic
def invitation_resend(
    *, invitation: Invitation, actor: Membership, request: HttpRequest | None = None
) -> IssuedInvitation:
    """A new token and expiry; the old link dies. The resender becomes the invitation's
    issuer (`invited_by`): an Owner invitation is accepted only while its issuer is an
    owner."""
    organization = lock_organization(invitation.organization)
    actor = fresh_actor(actor)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    _check_may_handle(invitation, actor, "resend")
    if invitation.status != Invitation.Status.PENDING:
        raise ValidationError("Only pending invitations can be resent.")
    _check_invitation_quota(organization, 1)
    raw, digest = new_token()
    invitation.token_hash = digest
    invitation.expires_at = timezone.now() + INVITATION_LIFETIME
    invitation.invited_by = actor.user
    invitation.save(update_fields=["token_hash", "expires_at", "invited_by"])
    link = _invitation_link(request, raw)
    record(
        action=events.INVITATION_RESENT,
        organization=organization,
        actor=actor.user,
        target=invitation,
        target_label=invitation.email,
        request=request,
    )
    transaction.on_commit(lambda: _send_invitation(invitation, link, actor.user))
    return IssuedInvitation(invitation, link)


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, actor: Membership, request: HttpRequest | None = None
) -> None:
    actor = fresh_actor(actor)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    _check_may_handle(invitation, actor, "revoke")
    if invitation.status != Invitation.Status.PENDING:
        raise ValidationError("Only pending invitations can be revoked.")
    invitation.status = Invitation.Status.REVOKED
    invitation.save(update_fields=["status"])
    record(
        action=events.INVITATION_REVOKED,
        organization=invitation.organization,
        actor=actor.user,
        target=invitation,
        target_label=invitation.email,
        request=request,
    )


def _issued_by_an_owner(invitation: Invitation) -> bool:
    """Whether whoever issued the live link (created or last resent it) is still an active
    owner: ownership passes only from a current owner."""
    return (
        Membership.objects.active()
        .filter(
            organization_id=invitation.organization_id,
            user_id=invitation.invited_by_id,
            is_owner=True,
        )
        .exists()
    )


def invitation_problem(invitation: Invitation | None, user: User | None = None) -> str:
    """Why this invitation cannot be accepted (by `user`), or "" when it can."""
    if invitation is None:
        return "unknown"
    if invitation.status == Invitation.Status.REVOKED:
        return "revoked"
    if invitation.status == Invitation.Status.ACCEPTED:
        return "used"
    if invitation.expires_at <= timezone.now():
        return "expired"
    if invitation.role == Invitation.Role.OWNER and not _issued_by_an_owner(invitation):
        return "issuer"
    if user is not None and user.is_authenticated:
        if user.email != invitation.email:
            return "other_email"
        if user.managed_by_id and user.managed_by_id != invitation.organization_id:
            return "managed"
    return ""


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User, request: HttpRequest | None = None
) -> Membership:
    """Join the organization as a guest with the invitation's role and groups."""
    # The organization first, as resending does: the issuer's ownership is read under it.
    organization = lock_organization(invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    problem = invitation_problem(invitation, user)
    if problem:
        raise ValidationError(problem)
    membership, created = Membership.objects.get_or_create(organization=organization, user=user)
    if invitation.role == Invitation.Role.OWNER and not membership.is_owner:
        membership.is_owner = True
        membership.save(update_fields=["is_owner"])
    policy_name = ROLE_POLICIES.get(invitation.role)
    if policy_name:
        policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name=policy_name)
        PolicyAttachment.objects.get_or_create(
            policy=policy, membership=membership, defaults={"organization": organization}
        )
    membership.groups.add(*invitation.groups.all())
    invitation.status = Invitation.Status.ACCEPTED
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
    organization_bump_authz_version(organization=organization)
    record(
        action=events.INVITATION_ACCEPTED,
        organization=organization,
        actor=user,
        target=membership,
        target_label=user.email,
        data={"role": invitation.role, "new_member": created},
        request=request,
    )
    return membership
