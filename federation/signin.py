"""Federated sign-in, for both protocols (an ID token's claims, or a SAML assertion turned
into claims by federation.saml): who the person is in the console, just-in-time accounts,
linking existing accounts, claim rules, and single sign-on only for password sign-in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.emails import canonical_email_or_none
from accounts.mfa import has_mfa
from accounts.models import User
from audit import events
from audit.services import record
from federation import oidc
from federation.models import (
    ClaimRule,
    FederatedIdentity,
    FederationSettings,
    IdentityProvider,
    ProviderDomain,
    ProviderMFADevice,
)
from organizations.models import Membership, Organization
from organizations.services.groups import group_add_member, group_remove_member
from organizations.services.organizations import organization_bump_authz_version
from policies.delegation import DelegationRefused


class SignInRefused(Exception):
    """The person may not sign in through this provider; `reason` goes to the audit."""

    def __init__(self, reason: str, message: str, *, email: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.email = email


@dataclass
class Outcome:
    """A member to sign in, or an existing account to link first (`membership` None)."""

    user: User
    membership: Membership | None
    created: bool = False
    changes: list[str] = field(default_factory=list)


def provider_for_email(email: str) -> IdentityProvider | None:
    """The enabled provider whose verified claim covers the address's domain, if any (one
    indexed query)."""
    address = canonical_email_or_none(email)
    if address is None:
        return None
    domain = address.rpartition("@")[2]
    found = (
        ProviderDomain.objects.select_related("provider__organization")
        .filter(domain=domain, verified_at__isnull=False, provider__enabled=True)
        .first()
    )
    return found.provider if found is not None else None


def refuse(
    *,
    provider: IdentityProvider | None,
    reason: str,
    message: str,
    email: str = "",
    request: HttpRequest | None = None,
) -> None:
    """Record a refused federated sign-in in the provider's organization's trail (with no
    provider known, in the trail of no organization, which operators read)."""
    record(
        action=events.SSO_REFUSED,
        organization=provider.organization if provider is not None else None,
        target=provider,
        data={"reason": reason, "message": message, "email": email},
        request=request,
        actor_label=email,
    )


def _verified_email(provider: IdentityProvider, claims: dict[str, Any]) -> str:
    email = canonical_email_or_none(str(claims.get("email") or ""))
    if email is None:
        raise SignInRefused("no_email", "The provider did not send an email address.")
    domain = email.rpartition("@")[2]
    if not provider.domains.filter(domain=domain, verified_at__isnull=False).exists():
        raise SignInRefused(
            "domain_not_allowed",
            f"Addresses at {domain} do not sign in through {provider.name}.",
            email=email,
        )
    if claims.get("email_verified") is not True:
        raise SignInRefused(
            "email_unverified",
            f"{provider.name} has not verified the address {email}.",
            email=email,
        )
    return email


def _remember(provider: IdentityProvider, subject: str, user: User) -> None:
    FederatedIdentity.objects.update_or_create(
        provider=provider,
        subject=subject,
        defaults={"user": user, "last_sign_in_at": timezone.now()},
    )


@transaction.atomic
def _create_member(
    provider: IdentityProvider, email: str, claims: dict[str, Any], request: HttpRequest | None
) -> Outcome:
    organization = provider.organization
    name = str(claims.get("name") or "")[:150]
    try:
        with transaction.atomic():
            # No usable password: this account signs in through its provider.
            user = User.objects.create_user(email=email, full_name=name, managed_by=organization)
    except IntegrityError:
        raise SignInRefused(
            "account_race", "Your account was just created elsewhere. Try again.", email=email
        ) from None
    membership = Membership.objects.create(organization=organization, user=user)
    organization_bump_authz_version(organization=organization)
    _remember(provider, str(claims["sub"]), user)
    record(
        action=events.SSO_ACCOUNT_CREATED,
        organization=organization,
        actor=user,
        target=provider,
        data={"email": email, "subject": str(claims["sub"])},
        request=request,
    )
    return Outcome(user=user, membership=membership, created=True)


def federated_identity(
    provider: IdentityProvider, claims: dict[str, Any], request: HttpRequest | None = None
) -> Outcome:
    """Who signs in with these (validated) claims; raises SignInRefused.

    A member of the provider's organization signs in; an unknown address becomes a new
    member; another account must prove it is theirs before it is linked (`link_account`).
    """
    email = _verified_email(provider, claims)
    organization = provider.organization
    identity = (
        FederatedIdentity.objects.select_related("user")
        .filter(provider=provider, subject=str(claims["sub"]))
        .first()
    )
    user = identity.user if identity else User.objects.filter(email=email).first()
    if user is None:
        return _create_member(provider, email, claims, request)
    if identity is None and FederatedIdentity.objects.filter(provider=provider, user=user).exists():
        # Another subject now asserts this address: a reassigned address, not this person.
        raise SignInRefused(
            "subject_changed",
            f"This account is linked to another {provider.name} identity.",
            email=email,
        )
    if not user.is_active:
        raise SignInRefused("account_inactive", "This account is deactivated.", email=email)
    membership = (
        Membership.objects.select_related("organization")
        .filter(organization=organization, user=user)
        .first()
    )
    if membership is None:
        if user.managed_by_id is not None:
            raise SignInRefused(
                "managed_elsewhere",
                "This address belongs to an account of another organization.",
                email=email,
            )
        return Outcome(user=user, membership=None)
    if membership.status != Membership.Status.ACTIVE:
        raise SignInRefused(
            "membership_suspended", f"Your access to {organization.name} is suspended.", email=email
        )
    if identity is None and user.managed_by_id != organization.pk:
        # A guest's own account: the provider's word on the address is not proof enough.
        return Outcome(user=user, membership=None)
    _remember(provider, str(claims["sub"]), user)
    return Outcome(user=user, membership=membership)


@transaction.atomic
def link_account(
    *,
    provider: IdentityProvider,
    user: User,
    subject: str,
    request: HttpRequest | None = None,
) -> Membership:
    """After the account's own password or code: make it a member, linked to the provider."""
    organization = provider.organization
    membership, created = Membership.objects.get_or_create(organization=organization, user=user)
    if created:
        organization_bump_authz_version(organization=organization)
    _remember(provider, subject, user)
    record(
        action=events.SSO_ACCOUNT_LINKED,
        organization=organization,
        actor=user,
        target=provider,
        data={"subject": subject, "joined": created},
        request=request,
    )
    return membership


def _claim_words(rule: ClaimRule, claims: dict[str, Any]) -> dict[str, Any]:
    return {
        "claim": rule.claim,
        "operator": rule.operator,
        "value": rule.value,
        "claim_value": claims.get(rule.claim),
        "group": rule.group.name,
    }


def apply_claim_rules(
    *,
    provider: IdentityProvider,
    membership: Membership,
    claims: dict[str, Any],
    request: HttpRequest | None = None,
) -> list[str]:
    """Put the member in the groups whose rules their claims match, out of the others.

    Each change goes through the group services (authorization version, group audit
    event) as the rule's author, whose rights bound it, and is audited with its claim.
    Returns what changed, for the member to read.
    """
    by_group: dict[Any, list[ClaimRule]] = {}
    for rule in provider.claim_rules.select_related("group", "created_by"):
        by_group.setdefault(rule.group_id, []).append(rule)
    changes: list[str] = []
    for rules in by_group.values():
        matching = [rule for rule in rules if rule.matches(claims)]
        cause = matching[0] if matching else rules[0]
        group = cause.group
        write = group_add_member if matching else group_remove_member
        try:
            changed = write(
                group=group, membership=membership, actor=cause.created_by, request=request
            )
        except DelegationRefused as refused:
            record(
                action=events.IDP_CLAIM_RULE_REFUSED,
                organization=provider.organization,
                actor=membership.user,
                target=group,
                data={**_claim_words(cause, claims), "refused": " ".join(refused.messages)},
                request=request,
            )
            continue
        if changed:
            verb = "added" if matching else "removed"
            record(
                action=events.IDP_CLAIM_RULE_APPLIED,
                organization=provider.organization,
                actor=membership.user,
                target=group,
                data={**_claim_words(cause, claims), "change": verb},
                request=request,
            )
            changes.append(f"{verb} {'to' if matching else 'from'} {group.name}")
    return changes


@dataclass(frozen=True)
class SignedIn:
    changes: list[str]
    # Set when the provider asserted a second factor the organization accepts.
    mfa_device: ProviderMFADevice | None


@transaction.atomic
def federated_sign_in(
    *,
    provider: IdentityProvider,
    user: User,
    membership: Membership,
    claims: dict[str, Any],
    request: HttpRequest | None = None,
) -> SignedIn:
    """Re-evaluate the claim rules and record the sign-in (the session is the caller's)."""
    changes = apply_claim_rules(
        provider=provider, membership=membership, claims=claims, request=request
    )
    device = None
    # An organization's trust in its provider stops at its own pages: a session verified
    # this way would open the operators' admin (django-otp), so staff use their own code.
    # Owners always use the console's own code; so do guests, whose accounts are their own.
    trusted = (
        not user.is_staff
        and not membership.is_owner
        and user.managed_by_id == provider.organization_id
    )
    if provider.accept_provider_mfa and oidc.provider_mfa(claims) and trusted:
        device, _ = ProviderMFADevice.objects.get_or_create(
            user=user, provider=provider, defaults={"name": provider.name, "confirmed": True}
        )
    record(
        action=events.SSO_SIGNED_IN,
        organization=provider.organization,
        actor=user,
        target=provider,
        data={
            "subject": str(claims["sub"]),
            "provider_mfa": device is not None,
            "groups": changes,
        },
        request=request,
    )
    return SignedIn(changes=changes, mfa_device=device)


def sso_required_refusal(user: User) -> Organization | None:
    """The organization whose single-sign-on-only rule refuses this password sign-in.

    Only accounts an organization manages are bound; its owners keep a break-glass path
    of password and authenticator code. Guests keep their own accounts.
    """
    if user.managed_by_id is None:
        return None
    setting = (
        FederationSettings.objects.select_related("organization")
        .filter(organization_id=user.managed_by_id, sso_required=True)
        .first()
    )
    if setting is None:
        return None
    is_owner = Membership.objects.filter(
        organization_id=user.managed_by_id, user=user, is_owner=True
    ).exists()
    if is_owner and has_mfa(user):
        return None
    return setting.organization


def record_password_refused(
    *, organization: Organization, user: User, request: HttpRequest | None
) -> None:
    record(
        action=events.SSO_PASSWORD_REFUSED,
        organization=organization,
        target=user,
        request=request,
    )
