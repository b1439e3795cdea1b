"""Writes to organizations' identity providers, claim rules and single sign-on setting:
checks, the write and its audit event in one transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from audit import events
from audit.services import diff, record
from federation import crypto, dns, oidc, saml
from federation.models import ClaimRule, FederationSettings, IdentityProvider, ProviderDomain
from organizations.models import Group, Membership, Organization
from organizations.services.groups import group_rules
from policies.delegation import require_within_rights

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PROVIDER_FIELDS = (
    "kind",
    "name",
    "issuer",
    "client_id",
    "scopes",
    "saml_metadata_url",
    "saml_email_attribute",
    "accept_provider_mfa",
    "enabled",
)


def _clean_url(url: str, field: str, what: str) -> str:
    """HTTPS, or plain HTTP on loopback outside production (local and test providers)."""
    url = url.strip()
    parts = urlsplit(url)
    loopback_ok = not settings.PRODUCTION and parts.hostname in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback_ok):
        raise ValidationError({field: f"The {what} must start with https://."})
    if parts.fragment or not parts.hostname:
        raise ValidationError({field: f"Enter the {what} alone, without fragment."})
    return url


def clean_issuer(issuer: str) -> str:
    issuer = _clean_url(issuer, "issuer", "issuer URL")
    if urlsplit(issuer).query:
        raise ValidationError({"issuer": "Enter the issuer URL alone, without query or fragment."})
    return issuer


def _saml_metadata(url: str, xml: str) -> tuple[str, str, saml.IdPMetadata]:
    """(URL, document, what it says) from a metadata URL, fetched now, or pasted XML."""
    if url.strip():
        url = _clean_url(url, "saml_metadata_url", "metadata URL")
        try:
            xml = saml.fetch_metadata(url)
        except (oidc.ProviderUnavailable, saml.MetadataInvalid) as error:
            raise ValidationError({"saml_metadata_url": str(error)}) from error
        field = "saml_metadata_url"
    elif xml.strip():
        field = "saml_metadata_xml"
    else:
        raise ValidationError(
            {"saml_metadata_url": "Enter the IdP's metadata URL, or paste its metadata XML."}
        )
    try:
        return url, xml.strip(), saml.read_metadata(xml.strip())
    except saml.MetadataInvalid as error:
        raise ValidationError({field: str(error)}) from error


def _clean_email_attribute(name: str) -> str:
    return name.strip() or "email"


# Nobody owns these for their users: no organization may route them to its provider.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
    }
)


def clean_domains(domains: Iterable[str]) -> list[str]:
    cleaned = sorted(
        {domain.strip().lower().lstrip("@").rstrip(".") for domain in domains if domain.strip()}
    )
    for domain in cleaned:
        if "." not in domain or any(c in domain for c in " /@:"):
            raise ValidationError({"domains": f"{domain!r} is not an email domain."})
        if domain in PUBLIC_MAIL_DOMAINS:
            raise ValidationError(
                {"domains": f"{domain} is a public mail service: use your organization's domain."}
            )
    if not cleaned:
        raise ValidationError({"domains": "Name at least one email domain."})
    return cleaned


def clean_scopes(scopes: str) -> str:
    words = scopes.split()
    if "openid" not in words:
        raise ValidationError({"scopes": "The scopes must include openid."})
    return " ".join(dict.fromkeys(words))


def _verified_elsewhere(provider: IdentityProvider, domains: Iterable[str]) -> list[str]:
    return list(
        ProviderDomain.objects.filter(domain__in=domains, verified_at__isnull=False)
        .exclude(provider=provider)
        .values_list("domain", flat=True)
    )


def _set_domains(provider: IdentityProvider, domains: list[str]) -> None:
    """Keep the claims that remain (verified ones stay verified); new ones start unverified."""
    taken = _verified_elsewhere(provider, domains)
    if taken:
        raise ValidationError(
            {"domains": f"Already verified by another organization: {', '.join(taken)}."}
        )
    provider.domains.exclude(domain__in=domains).delete()
    existing = set(provider.domains.values_list("domain", flat=True))
    try:
        with transaction.atomic():
            ProviderDomain.objects.bulk_create(
                ProviderDomain(
                    provider=provider, domain=domain, verification_token=secrets.token_urlsafe(24)
                )
                for domain in domains
                if domain not in existing
            )
    except IntegrityError:  # the same provider's domains saved at the same moment
        raise ValidationError(
            {"domains": "These domains were just changed by someone else: try again."}
        ) from None


def _check_still_signable(provider: IdentityProvider) -> None:
    """Members of a single-sign-on-only organization need an enabled provider to sign in."""
    others = provider.organization.identity_providers.filter(enabled=True).exclude(pk=provider.pk)
    required = FederationSettings.objects.filter(
        organization_id=provider.organization_id, sso_required=True
    ).exists()
    if required and not others.exists():
        raise ValidationError(
            "Members sign in only through single sign-on: turn that off before disabling "
            "or removing the last enabled provider."
        )


def _snapshot(provider: IdentityProvider) -> dict[str, Any]:
    values = {field: getattr(provider, field) for field in PROVIDER_FIELDS}
    if provider.kind == IdentityProvider.Kind.SAML:
        # The document itself is long: its digest says whether it changed.
        digest = hashlib.sha256(provider.saml_metadata_xml.encode()).hexdigest()[:16]
        values["saml_metadata_sha256"] = digest
    values["domains"] = sorted(provider.domains.values_list("domain", flat=True))
    return values


def _mark_verified(claim: ProviderDomain, found: bool) -> tuple[bool, str]:
    if not found:
        return False, (
            f"No TXT record {claim.challenge_name} with value {claim.challenge_value} was "
            "found; DNS changes can take a while to appear."
        )
    if _verified_elsewhere(claim.provider, [claim.domain]):
        return False, f"{claim.domain} is already verified by another organization."
    try:
        with transaction.atomic():
            updated = ProviderDomain.objects.filter(pk=claim.pk, verified_at__isnull=True).update(
                verified_at=timezone.now()
            )
    except IntegrityError:  # verified elsewhere at the same moment
        return False, f"{claim.domain} was just verified by another organization."
    if not updated:
        return False, f"{claim.domain} is no longer waiting for verification."
    return True, f"{claim.domain} verified: its people now sign in through {claim.provider.name}."


def domain_verify(
    *, claim: ProviderDomain, actor: User, request: HttpRequest | None = None
) -> tuple[bool, str]:
    """Look for the claim's TXT record and mark the domain verified: (worked, what happened).
    The look-up (up to a few seconds) runs before the transaction opens."""
    provider = claim.provider
    require_owner(provider.organization, actor)
    found = claim.challenge_value in dns.txt_records(claim.challenge_name)
    with transaction.atomic():
        ok, message = _mark_verified(claim, found)
        record(
            action=events.IDP_DOMAIN_VERIFIED if ok else events.IDP_DOMAIN_VERIFICATION_FAILED,
            organization=provider.organization,
            actor=actor,
            target=provider,
            data={"domain": claim.domain, "message": message},
            request=request,
        )
    return ok, message


def require_owner(organization: Organization, actor: User) -> None:
    """Providers decide who signs in as a member (and whose MFA counts): owners only."""
    if not Membership.objects.filter(
        organization=organization, user=actor, is_owner=True, status=Membership.Status.ACTIVE
    ).exists():
        raise PermissionDenied("Only owners manage identity providers and single sign-on.")


def _check_name(organization: Organization, name: str, exclude: IdentityProvider | None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the provider."})
    taken = organization.identity_providers.filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError({"name": "Another identity provider has this name."})
    return name


@transaction.atomic
def provider_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    domains: Iterable[str],
    kind: str = IdentityProvider.Kind.OIDC,
    issuer: str = "",
    client_id: str = "",
    client_secret: str = "",
    scopes: str = "openid email profile",
    saml_metadata_url: str = "",
    saml_metadata_xml: str = "",
    saml_email_attribute: str = "email",
    accept_provider_mfa: bool = False,
    enabled: bool = True,
    request: HttpRequest | None = None,
) -> IdentityProvider:
    require_owner(organization, actor)
    provider = IdentityProvider(
        organization=organization,
        kind=kind,
        name=_check_name(organization, name, None),
        accept_provider_mfa=accept_provider_mfa,
        enabled=enabled,
    )
    if kind == IdentityProvider.Kind.SAML:
        url, xml, metadata = _saml_metadata(saml_metadata_url, saml_metadata_xml)
        provider.saml_metadata_url, provider.saml_metadata_xml = url, xml
        provider.issuer = metadata.entity_id
        provider.saml_email_attribute = _clean_email_attribute(saml_email_attribute)
        provider.scopes = ""
        # The console's signing pair for this provider; the key never leaves encrypted.
        certificate, key = saml.signing_pair(f"IAM Portal for {organization.name}")
        provider.sp_certificate = certificate
        provider.sp_private_key_encrypted = crypto.encrypt(key)
    elif kind == IdentityProvider.Kind.OIDC:
        if not client_id.strip():
            raise ValidationError({"client_id": "Enter the client ID."})
        if not client_secret:
            raise ValidationError({"client_secret": "Enter the client secret."})
        provider.issuer = clean_issuer(issuer)
        provider.client_id = client_id.strip()
        provider.client_secret_encrypted = crypto.encrypt(client_secret)
        provider.scopes = clean_scopes(scopes)
    else:
        raise ValidationError({"kind": "Choose OpenID Connect or SAML 2.0."})
    provider.save()
    _set_domains(provider, clean_domains(domains))
    record(
        action=events.IDP_CREATED,
        organization=organization,
        actor=actor,
        target=provider,
        data=_snapshot(provider),
        request=request,
    )
    return provider


@transaction.atomic
def provider_update(
    *,
    provider: IdentityProvider,
    actor: User,
    name: str,
    domains: Iterable[str],
    accept_provider_mfa: bool,
    enabled: bool,
    issuer: str = "",
    client_id: str = "",
    scopes: str = "",
    client_secret: str = "",
    saml_metadata_url: str = "",
    saml_metadata_xml: str = "",
    saml_email_attribute: str = "email",
    request: HttpRequest | None = None,
) -> bool:
    """Change the provider (not its kind); a blank `client_secret` keeps the stored one,
    and a SAML provider's metadata is read again from its URL, or the pasted XML, or kept.
    True if changed."""
    require_owner(provider.organization, actor)
    before = _snapshot(provider)
    provider.name = _check_name(provider.organization, name, provider)
    if provider.kind == IdentityProvider.Kind.SAML:
        client_secret = ""
        if saml_metadata_url.strip() or saml_metadata_xml.strip():
            url, xml, metadata = _saml_metadata(saml_metadata_url, saml_metadata_xml)
            provider.saml_metadata_url, provider.saml_metadata_xml = url, xml
            provider.issuer = metadata.entity_id
        provider.saml_email_attribute = _clean_email_attribute(saml_email_attribute)
    else:
        if not client_id.strip():
            raise ValidationError({"client_id": "Enter the client ID."})
        old = (provider.issuer, provider.client_id)
        provider.issuer = clean_issuer(issuer)
        provider.client_id = client_id.strip()
        # The stored secret must not go to another issuer's token endpoint.
        if not client_secret and (provider.issuer, provider.client_id) != old:
            raise ValidationError(
                {
                    "client_secret": "Enter the client secret again when the issuer or "
                    "client changes."
                }
            )
        provider.scopes = clean_scopes(scopes)
    provider.accept_provider_mfa = accept_provider_mfa
    if provider.enabled and not enabled:
        _check_still_signable(provider)
    provider.enabled = enabled
    if client_secret:
        provider.client_secret_encrypted = crypto.encrypt(client_secret)
    provider.save()
    _set_domains(provider, clean_domains(domains))
    changes = diff(before, _snapshot(provider))
    if not changes["after"] and not client_secret:
        return False
    data: dict[str, Any] = dict(changes)
    if client_secret:
        data["secret_replaced"] = True
    record(
        action=events.IDP_UPDATED,
        organization=provider.organization,
        actor=actor,
        target=provider,
        data=data,
        request=request,
    )
    return True


@transaction.atomic
def provider_delete(
    *, provider: IdentityProvider, actor: User, request: HttpRequest | None = None
) -> None:
    require_owner(provider.organization, actor)
    _check_still_signable(provider)
    record(
        action=events.IDP_DELETED,
        organization=provider.organization,
        actor=actor,
        target=provider,
        data=_snapshot(provider),
        request=request,
    )
    provider.delete()


def provider_test(
    *, provider: IdentityProvider, actor: User, request: HttpRequest | None = None
) -> tuple[bool, str]:
    """Fetch the provider's discovery document and keys, or its SAML metadata:
    (worked, what happened)."""
    if provider.kind == IdentityProvider.Kind.SAML:
        ok, message = _saml_test(provider)
    else:
        ok, message = _oidc_test(provider)
    record(
        action=events.IDP_TESTED,
        organization=provider.organization,
        actor=actor,
        target=provider,
        data={"ok": ok, "message": message},
        request=request,
        result="success" if ok else "failed",
    )
    return ok, message


def _saml_test(provider: IdentityProvider) -> tuple[bool, str]:
    try:
        xml = provider.saml_metadata_xml
        if provider.saml_metadata_url:
            xml = saml.fetch_metadata(provider.saml_metadata_url)
        metadata = saml.read_metadata(xml)
    except (oidc.ProviderUnavailable, saml.MetadataInvalid) as error:
        return False, str(error)
    message = f"Metadata works: identity provider {metadata.entity_id}, sign-on at "
    message += f"{metadata.sso_url}."
    if metadata.entity_id != provider.issuer:
        return False, f"The metadata now names {metadata.entity_id}: save the provider again."
    return True, message


def _oidc_test(provider: IdentityProvider) -> tuple[bool, str]:
    try:
        discovery = oidc.discover(provider.issuer)
        keys = oidc.fetch_json(discovery.jwks_uri).get("keys")
        if not isinstance(keys, list) or not keys:
            raise oidc.ProviderUnavailable("The provider publishes no signing keys.")
    except oidc.ProviderUnavailable as error:
        ok, message = False, str(error)
    else:
        ok = True
        message = (
            f"Discovery works: authorization at {discovery.authorization_endpoint}, "
            f"{len(keys)} signing key{'s' if len(keys) != 1 else ''}."
        )
    return ok, message


@transaction.atomic
def claim_rule_add(
    *,
    provider: IdentityProvider,
    actor: User,
    claim: str,
    operator: str,
    value: str,
    group: Group,
    request: HttpRequest | None = None,
) -> ClaimRule:
    require_owner(provider.organization, actor)
    if group.organization_id != provider.organization_id:
        raise ValidationError({"group": "Choose a group of this organization."})
    if operator not in ClaimRule.Operator.values:
        raise ValidationError({"operator": "Choose equals or contains."})
    claim, value = claim.strip(), value.strip()
    if not claim or not value:
        raise ValidationError("Name the claim and the value.")
    # The rule will put people in the group: its author must hold what the group grants.
    require_within_rights(
        organization=provider.organization,
        actor=actor,
        request=request,
        after=group_rules(group),
        principals=f"people signing in through {provider.name}",
    )
    rule = ClaimRule.objects.create(
        provider=provider,
        claim=claim,
        operator=operator,
        value=value,
        group=group,
        created_by=actor,
    )
    record(
        action=events.IDP_CLAIM_RULE_ADDED,
        organization=provider.organization,
        actor=actor,
        target=provider,
        data={"rule": str(rule), "group": group.name},
        request=request,
    )
    return rule


@transaction.atomic
def claim_rule_remove(*, rule: ClaimRule, actor: User, request: HttpRequest | None = None) -> None:
    provider = rule.provider
    require_owner(provider.organization, actor)
    record(
        action=events.IDP_CLAIM_RULE_REMOVED,
        organization=provider.organization,
        actor=actor,
        target=provider,
        data={"rule": str(rule), "group": rule.group.name},
        request=request,
    )
    rule.delete()


@transaction.atomic
def sso_required_set(
    *, organization: Organization, actor: User, required: bool, request: HttpRequest | None = None
) -> bool:
    """Require single sign-on for members (owners and guests keep their passwords)."""
    require_owner(organization, actor)
    current, _ = FederationSettings.objects.select_for_update().get_or_create(
        organization=organization
    )
    if current.sso_required == required:
        return False
    if required and not organization.identity_providers.filter(enabled=True).exists():
        raise ValidationError("Add and enable an identity provider before requiring it.")
    current.sso_required = required
    current.save(update_fields=["sso_required"])
    record(
        action=events.SSO_REQUIRED_UPDATED,
        organization=organization,
        actor=actor,
        target=organization,
        data={"before": {"sso_required": not required}, "after": {"sso_required": required}},
        request=request,
    )
    return True
