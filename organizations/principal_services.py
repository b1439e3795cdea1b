"""Writes to people and groups: invitations, members, memberships, ownership, groups.

Each function is one transaction that checks its invariants, bumps the organization's
authorization version when who-may-do-what changes, and records its audit event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.emails import canonical_email
from accounts.models import User
from accounts.tokens import new_token, password_token_issue
from audit import events
from audit.models import AuditEvent
from audit.services import record
from iamportal.text import one_line
from organizations.models import Group, Invitation, Membership, Organization
from organizations.services import organization_bump_authz_version
from policies.delegation import require_within_rights
from policies.models import Policy, PolicyAttachment
from policies.selectors import compile_policy_rules, compile_rules_for

INVITATION_LIFETIME = dt.timedelta(days=7)
MAX_INVITATIONS_AT_ONCE = 50
# Room for MAX_INVITATIONS_AT_ONCE addresses of the longest length and their separators;
# longer input is refused before it is parsed.
MAX_INVITATION_INPUT_CHARS = MAX_INVITATIONS_AT_ONCE * 256
# Invitation emails (sent or resent) per organization in any hour; at least
# MAX_INVITATIONS_AT_ONCE, so that one full batch can always be sent eventually.
INVITATION_EMAILS_PER_HOUR = 100
INVITATION_EMAIL_WINDOW = dt.timedelta(hours=1)
# Legacy roles of the older consoles map to the owner flag or to one managed policy.
ROLE_POLICIES = {
    Invitation.Role.TECH: "TechAccess",
    Invitation.Role.BILLING: "BillingAccess",
    Invitation.Role.READ_ONLY: "ReadOnlyAccess",
}


def _absolute(request: HttpRequest | None, path: str) -> str:
    if request is not None:
        return request.build_absolute_uri(path)
    # Without a request (management commands) links use the configured public address.
    return settings.IAMPORTAL_BASE_URL.rstrip("/") + path


def _send(*, to: str, subject: str, template: str, context: dict[str, object]) -> None:
    """A text email with an HTML alternative; templates autoescape what users typed."""
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    # A header cannot hold a newline: names stored before they were checked may.
    message = EmailMultiAlternatives(subject=one_line(subject), body=text, to=[to])
    message.attach_alternative(html, "text/html")
    message.send()


def _lock_organization(organization: Organization) -> Organization:
    """Serialize membership changes of one organization (the last-owner invariant)."""
    return Organization.objects.select_for_update().get(pk=organization.pk)


# ------------------------------------------------------------------------ invitations


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


def _require_joining_within_rights(
    *,
    organization: Organization,
    actor: User,
    request: HttpRequest | None,
    role: str = "",
    groups: Sequence[Group] = (),
    principals: str,
) -> None:
    """The delegation ceiling for newcomers: the legacy role's managed policy and the
    groups' policies are what they will hold, so their author must hold them."""
    policy_ids = set(
        PolicyAttachment.objects.filter(group__in=groups).values_list("policy_id", flat=True)
    )
    if role in ROLE_POLICIES:
        policy_ids |= set(
            Policy.objects.filter(
                kind=Policy.Kind.MANAGED, organization=None, name=ROLE_POLICIES[role]
            ).values_list("pk", flat=True)
        )
    require_within_rights(
        organization=organization,
        actor=actor,
        request=request,
        after=compile_policy_rules(policy_ids),
        principals=principals,
    )


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    link: str  # shown once to the inviter; only its digest is stored


def _invitation_link(request: HttpRequest | None, raw: str) -> str:
    return _absolute(request, reverse("organizations:invitation_accept", kwargs={"token": raw}))


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
    _send(
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
    _lock_organization(organization)
    actor = _fresh_actor(actor)
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
    _require_joining_within_rights(
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
    organization = _lock_organization(invitation.organization)
    actor = _fresh_actor(actor)
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
    actor = _fresh_actor(actor)
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
    organization = _lock_organization(invitation.organization)
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


# ---------------------------------------------------------------------------- members


@dataclass(frozen=True)
class CreatedMember:
    membership: Membership
    link: str  # the password link, shown once to the creator


def _send_password_link(user: User, organization: Organization, link: str, *, new: bool) -> None:
    _send(
        to=user.email,
        subject=(
            f"Your {organization.name} account on IAM Portal"
            if new
            else f"Set a new password for {organization.name} on IAM Portal"
        ),
        template="password_link",
        context={"user": user, "organization": organization, "link": link, "new": new},
    )


def _password_link(request: HttpRequest | None, raw: str) -> str:
    return _absolute(request, reverse("accounts:password_set", kwargs={"token": raw}))


@transaction.atomic
def member_create(
    *,
    organization: Organization,
    actor: User,
    email: str,
    full_name: str,
    groups: Iterable[Group] = (),
    request: HttpRequest | None = None,
) -> CreatedMember:
    """An account that exists only in this organization; it sets its password by link."""
    email = User.objects.normalize_email(email)
    if not organization.allows_invitation_to(email):
        domains = ", ".join(organization.invitation_domains)
        raise ValidationError({"email": f"Accounts are limited to addresses at {domains}."})
    if User.objects.filter(email=email).exists():
        raise ValidationError(
            {"email": "An account with this email already exists: invite it instead."}
        )
    groups = list(groups)
    if any(group.organization_id != organization.pk for group in groups):
        raise ValidationError({"groups": "Choose groups of this organization."})
    _require_joining_within_rights(
        organization=organization, actor=actor, request=request, groups=groups, principals=email
    )
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, full_name=full_name.strip(), managed_by=organization
            )
    except IntegrityError:
        raise ValidationError(
            {"email": "An account with this email already exists: invite it instead."}
        ) from None
    membership = Membership.objects.create(organization=organization, user=user)
    membership.groups.add(*groups)
    organization_bump_authz_version(organization=organization)
    link = _password_link(request, password_token_issue(user=user))
    record(
        action=events.USER_CREATED,
        organization=organization,
        actor=actor,
        target=membership,
        target_label=email,
        data={"groups": [group.name for group in groups]},
        request=request,
    )
    transaction.on_commit(lambda: _send_password_link(user, organization, link, new=True))
    return CreatedMember(membership, link)


@transaction.atomic
def member_send_password_link(
    *, membership: Membership, actor: User, request: HttpRequest | None = None
) -> str:
    """A password link for a member account (guests manage their own password)."""
    if membership.kind != "member":
        raise ValidationError(
            "Only accounts created by this organization can be sent a password link; "
            "guests reset their own password."
        )
    user = membership.user
    link = _password_link(request, password_token_issue(user=user))
    record(
        action=events.USER_PASSWORD_LINK_SENT,
        organization=membership.organization,
        actor=actor,
        target=membership,
        target_label=user.email,
        request=request,
    )
    organization = membership.organization
    transaction.on_commit(lambda: _send_password_link(user, organization, link, new=False))
    return link


def _owners_left(organization: Organization, *, without: Membership) -> int:
    return organization.memberships.active().filter(is_owner=True).exclude(pk=without.pk).count()


def check_may_act_on(membership: Membership, actor: Membership, verb: str) -> None:
    """Refuse acting on oneself, and a non-owner acting on an owner (suspend, remove, their
    MFA...): only owners act on owners."""
    if membership.pk == actor.pk:
        raise ValidationError(f"You cannot {verb} yourself.")
    if membership.is_owner and not actor.is_owner:
        raise ValidationError(f"Only owners can {verb} an owner.")


def _fresh(membership: Membership) -> Membership:
    return Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)


def _fresh_actor(actor: Membership) -> Membership:
    """The actor as stored once the organization is locked: a concurrent request may have
    removed, suspended or demoted them in the meantime."""
    stored = Membership.objects.select_related("user").filter(pk=actor.pk).first()
    if stored is None or not stored.is_active:
        raise ValidationError("Your own membership changed meanwhile; reload the page.")
    return stored


def _save_change(
    organization: Organization,
    membership: Membership,
    *,
    fields: list[str],
    action: events.EventType,
    actor: User,
    request: HttpRequest | None,
) -> None:
    """Store a membership change that alters permissions: save, bump, record."""
    membership.save(update_fields=fields)
    organization_bump_authz_version(organization=organization)
    record(
        action=action,
        organization=organization,
        actor=actor,
        target=membership,
        target_label=membership.user.email,
        request=request,
    )


@transaction.atomic
def membership_suspend(
    *, membership: Membership, actor: Membership, request: HttpRequest | None = None
) -> Membership:
    """Suspended users keep their groups and policies but are denied everything, and
    their API keys stop working."""
    organization = _lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = _fresh_actor(actor)
    check_may_act_on(membership, actor, "suspend")
    if membership.is_owner and _owners_left(organization, without=membership) == 0:
        raise ValidationError("The last owner cannot be suspended.")
    if membership.status != Membership.Status.SUSPENDED:
        membership.status = Membership.Status.SUSPENDED
        _save_change(
            organization,
            membership,
            fields=["status"],
            action=events.USER_SUSPENDED,
            actor=actor.user,
            request=request,
        )
    return membership


@transaction.atomic
def membership_reactivate(
    *, membership: Membership, actor: Membership, request: HttpRequest | None = None
) -> Membership:
    organization = _lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = _fresh_actor(actor)
    check_may_act_on(membership, actor, "reactivate")
    if membership.status != Membership.Status.ACTIVE:
        # Everything the suspension held back comes back: its author must hold it.
        require_within_rights(
            organization=organization,
            actor=actor.user,
            request=request,
            after=compile_rules_for(membership),
            principals=membership.user.email,
        )
        membership.status = Membership.Status.ACTIVE
        _save_change(
            organization,
            membership,
            fields=["status"],
            action=events.USER_REACTIVATED,
            actor=actor.user,
            request=request,
        )
    return membership


def _delete_membership(membership: Membership) -> None:
    """A member account exists only here, so it goes with its membership."""
    user = membership.user
    membership.delete()
    if user.managed_by_id == membership.organization_id:
        user.delete()


@transaction.atomic
def membership_remove(
    *, membership: Membership, actor: Membership, request: HttpRequest | None = None
) -> None:
    organization = _lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = _fresh_actor(actor)
    check_may_act_on(membership, actor, "remove")
    if membership.is_owner and _owners_left(organization, without=membership) == 0:
        raise ValidationError("The last owner cannot be removed.")
    record(
        action=events.USER_REMOVED,
        organization=organization,
        actor=actor.user,
        target=membership,
        target_label=membership.user.email,
        data={"kind": membership.kind},
        request=request,
    )
    _delete_membership(membership)
    organization_bump_authz_version(organization=organization)


@transaction.atomic
def membership_leave(*, membership: Membership, request: HttpRequest | None = None) -> None:
    """Leave an organization; never its last owner, never a member's own organization."""
    organization = _lock_organization(membership.organization)
    membership = _fresh(membership)
    if membership.is_owner and _owners_left(organization, without=membership) == 0:
        raise ValidationError("You are the last owner: make someone else an owner before leaving.")
    if membership.kind == "member":
        raise ValidationError(
            "Your account exists only in this organization: ask an IAM manager to remove it."
        )
    record(
        action=events.USER_LEFT,
        organization=organization,
        actor=membership.user,
        target=membership,
        target_label=membership.user.email,
        request=request,
    )
    membership.delete()
    organization_bump_authz_version(organization=organization)


@transaction.atomic
def owner_grant(
    *, membership: Membership, actor: Membership, request: HttpRequest | None = None
) -> Membership:
    organization = _lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = _fresh_actor(actor)
    if not actor.is_owner:
        raise ValidationError("Only owners can make someone an owner.")
    if membership.is_owner:
        return membership
    if membership.kind == "member":
        raise ValidationError(
            "Accounts created by the organization cannot own it; invite a personal account."
        )
    if not membership.is_active:
        raise ValidationError("Reactivate this user before making them an owner.")
    membership.is_owner = True
    _save_change(
        organization,
        membership,
        fields=["is_owner"],
        action=events.USER_OWNER_GRANTED,
        actor=actor.user,
        request=request,
    )
    return membership


@transaction.atomic
def owner_step_down(*, membership: Membership, request: HttpRequest | None = None) -> Membership:
    """Give up one's own ownership; the last owner never can. The organization row lock
    makes two owners stepping down at the same moment take turns, so one is refused."""
    organization = _lock_organization(membership.organization)
    membership = _fresh(membership)
    if not membership.is_owner:
        return membership
    if _owners_left(organization, without=membership) == 0:
        raise ValidationError("You are the last owner: make someone else an owner first.")
    membership.is_owner = False
    _save_change(
        organization,
        membership,
        fields=["is_owner"],
        action=events.USER_OWNER_STEPPED_DOWN,
        actor=membership.user,
        request=request,
    )
    return membership
