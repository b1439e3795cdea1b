"""Writes to people: member accounts, suspension, removal, leaving, ownership; the last owner
always stays."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import User
from accounts.tokens import password_token_issue
from audit import events
from audit.services import AuditActor, diff, record
from federation.models import FederationSettings
from organizations.models import Application, Group, Invitation, Membership, Organization
from organizations.services.mail import absolute_url, send_email
from organizations.services.organizations import organization_bump_authz_version
from organizations.tags import check_tags
from policies.delegation import require_within_rights
from policies.evaluator import CompiledRule
from policies.models import Policy, PolicyAttachment
from policies.selectors.rules import compile_policy_rules, compile_rules_for

# Legacy roles of the older consoles map to the owner flag or to one managed policy.
ROLE_POLICIES = {
    Invitation.Role.TECH: "TechAccess",
    Invitation.Role.BILLING: "BillingAccess",
    Invitation.Role.READ_ONLY: "ReadOnlyAccess",
}


def lock_organization(organization: Organization) -> Organization:
    """Serialize membership changes of one organization (the last-owner invariant)."""
    return Organization.objects.select_for_update().get(pk=organization.pk)


def require_joining_within_rights(
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
class CreatedMember:
    membership: Membership
    link: str  # the password link, shown once to the creator ("" when provisioned)


def _send_password_link(user: User, organization: Organization, link: str, *, new: bool) -> None:
    send_email(
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
    return absolute_url(request, reverse("accounts:password_set", kwargs={"token": raw}))


@transaction.atomic
def member_create(
    *,
    organization: Organization,
    actor: User,
    email: str,
    full_name: str,
    groups: Iterable[Group] = (),
    request: HttpRequest | None = None,
    via: AuditActor | None = None,
) -> CreatedMember:
    """An account that exists only in this organization; it sets its password by link.

    Provisioned by the system for a credential (`via`, a SCIM token, recorded as the
    actor; `actor` vouches for it and their rights bound the groups given), it gets no
    password link and its password stays unusable: the identity provider that manages
    it signs it in (SSO); `member_send_password_link` can still send one."""
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
    require_joining_within_rights(
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
    record(
        action=events.USER_CREATED,
        organization=organization,
        actor=via or actor,
        target=membership,
        target_label=email,
        data={"groups": [group.name for group in groups]},
        request=request,
    )
    if via is not None:
        return CreatedMember(membership, "")
    link = _password_link(request, password_token_issue(user=user))
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
    # Members of a single-sign-on-only organization sign in through its provider alone
    # (owners, refused above, keep their break-glass password).
    if FederationSettings.objects.filter(
        organization_id=membership.organization_id, sso_required=True
    ).exists():
        raise ValidationError(
            "This organization requires single sign-on: its members sign in through the "
            "identity provider, so they get no password link."
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


# Who changes a membership: a member in the console or through their API key, or an
# application through its API key (never an owner, so never acting on owners).
Actor = Membership | Application


def may_act_on(membership: Membership, actor: Actor) -> bool:
    """Whether `actor` may suspend, remove or manage the MFA of `membership`: never
    oneself, and only owners act on owners (pages hide what `check_may_act_on` refuses)."""
    if membership.pk == actor.pk:
        return False
    return not membership.is_owner or getattr(actor, "is_owner", False)


def check_may_act_on(membership: Membership, actor: Actor, verb: str) -> None:
    """Refuse acting on oneself, and a non-owner acting on an owner (suspend, remove, their
    MFA...): only owners act on owners."""
    if may_act_on(membership, actor):
        return
    if membership.pk == actor.pk:
        raise ValidationError(f"You cannot {verb} yourself.")
    raise ValidationError(f"Only owners can {verb} an owner.")


def _fresh(membership: Membership) -> Membership:
    return Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)


def fresh_actor(actor: Actor) -> Actor:
    """The actor as stored once the organization is locked: a concurrent request may have
    removed, suspended or demoted them (or deleted the application) in the meantime."""
    if isinstance(actor, Application):
        stored_application = Application.objects.filter(pk=actor.pk).first()
        if stored_application is None:
            raise ValidationError("This application was deleted meanwhile.")
        return stored_application
    stored = Membership.objects.select_related("user").filter(pk=actor.pk).first()
    if stored is None or not stored.is_active:
        raise ValidationError("Your own membership changed meanwhile; reload the page.")
    return stored


def _user_of(actor: Actor | None) -> User | None:
    """The person to name as the change's author; None for an application, which the
    audit trail names through its API key and the delegation ceiling through the request,
    and for the system."""
    return actor.user if isinstance(actor, Membership) else None


def _save_change(
    organization: Organization,
    membership: Membership,
    *,
    fields: list[str],
    action: events.EventType,
    actor: User | AuditActor | None,
    request: HttpRequest | None,
    preview: Mapping[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Store a membership change that alters permissions: save, bump, record (with the
    access diff its author previewed and confirmed, policies.preview, and the reason
    given, if any)."""
    membership.save(update_fields=fields)
    organization_bump_authz_version(organization=organization)
    data: dict[str, Any] = {}
    if preview:
        data["preview"] = dict(preview)
    if reason:
        data["reason"] = reason
    record(
        action=action,
        organization=organization,
        actor=actor,
        target=membership,
        target_label=membership.user.email,
        data=data,
        request=request,
    )


@transaction.atomic
def membership_suspend(
    *,
    membership: Membership,
    actor: Actor | None,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
    reason: str = "",
    via: AuditActor | None = None,
) -> Membership:
    """Suspended users keep their groups and policies but are denied everything, and
    their API keys stop working. `actor` None: the system (the unused-member sweep,
    organizations.services.dormancy), recorded with `reason`. `via`: the system for a
    credential (a SCIM token) acting as `actor`, recorded as the actor instead."""
    organization = lock_organization(membership.organization)
    membership = _fresh(membership)
    if actor is not None:
        actor = fresh_actor(actor)
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
            actor=via or _user_of(actor),
            request=request,
            preview=preview,
            reason=reason,
        )
    return membership


@transaction.atomic
def membership_reactivate(
    *,
    membership: Membership,
    actor: Actor,
    request: HttpRequest | None = None,
    via: AuditActor | None = None,
) -> Membership:
    """Lift a suspension, within `actor`'s rights; `via` as for `membership_suspend`."""
    organization = lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = fresh_actor(actor)
    check_may_act_on(membership, actor, "reactivate")
    if membership.status != Membership.Status.ACTIVE:
        # Everything the suspension held back comes back: its author must hold it.
        require_within_rights(
            organization=organization,
            actor=_user_of(actor),
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
            actor=via or _user_of(actor),
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
    *,
    membership: Membership,
    actor: Actor,
    request: HttpRequest | None = None,
    via: AuditActor | None = None,
) -> None:
    """Remove a membership (a member account with it); `via` as for `membership_suspend`."""
    organization = lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = fresh_actor(actor)
    check_may_act_on(membership, actor, "remove")
    if membership.is_owner and _owners_left(organization, without=membership) == 0:
        raise ValidationError("The last owner cannot be removed.")
    record(
        action=events.USER_REMOVED,
        organization=organization,
        actor=via or _user_of(actor),
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
    organization = lock_organization(membership.organization)
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
    organization = lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = fresh_actor(actor)
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
    organization = lock_organization(membership.organization)
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


# The fields a condition reads come from its compiled form; the text is a fallback for a
# condition that did not compile (it fails closed, but a retag must not be cheaper).
_READS_PRINCIPAL_TAGS = re.compile(r"\bprincipal\s*\.\s*tags\b")


def _reads_principal_tags(rule: CompiledRule) -> bool:
    fields = rule.condition.fields if rule.condition is not None else frozenset()
    return "principal.tags" in fields or bool(_READS_PRINCIPAL_TAGS.search(rule.condition_source))


def require_retag_within_rights(
    *,
    principal: Membership | Application,
    actor: User | None,
    request: HttpRequest | None,
    label: str,
) -> None:
    """The delegation ceiling of a change of `principal`'s tags: its rules stay the same,
    but any of them whose condition reads `principal.tags` may start matching (an allow)
    or stop matching (a deny), so the author must hold each of their actions where they
    apply. Over-approximated like every change (any retag counts), so it only refuses
    more."""
    reading = [rule for rule in compile_rules_for(principal) if _reads_principal_tags(rule)]
    require_within_rights(
        organization=principal.organization,
        actor=actor,
        request=request,
        before=[rule for rule in reading if rule.effect == "deny"],
        after=[rule for rule in reading if rule.effect == "allow"],
        principals=label,
    )


@transaction.atomic
def membership_set_tags(
    *,
    membership: Membership,
    tags: dict[str, str],
    actor: Actor,
    request: HttpRequest | None = None,
) -> Membership:
    """Replace a user's tags, which policy conditions read (`principal.tags`): nobody
    retags themselves and only owners retag owners (`may_act_on`), within the author's
    rights. Audited and the authorization version bumped, when they change."""
    tags = check_tags(tags)
    organization = lock_organization(membership.organization)
    membership = _fresh(membership)
    actor = fresh_actor(actor)
    check_may_act_on(membership, actor, "change the tags of")
    if membership.tags == tags:
        return membership
    require_retag_within_rights(
        principal=membership, actor=_user_of(actor), request=request, label=membership.user.email
    )
    before, membership.tags = membership.tags, tags
    membership.save(update_fields=["tags"])
    # Cached decisions evaluated conditions on the old tags.
    organization_bump_authz_version(organization=organization)
    record(
        action=events.USER_UPDATED,
        organization=organization,
        actor=_user_of(actor),
        target=membership,
        target_label=membership.user.email,
        data=diff({"tags": before}, {"tags": tags}),
        request=request,
    )
    return membership
