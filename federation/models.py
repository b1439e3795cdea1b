"""Organizations' identity providers (single sign-on), their claim rules, and the links
between provider subjects and console accounts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django_otp.models import Device

DEFAULT_SCOPES = "openid email profile"
CHALLENGE_PREFIX = "_iamportal-challenge"
CHALLENGE_VALUE_PREFIX = "iamportal-domain-verification="


class IdentityProvider(models.Model):
    """An organization's identity provider (OpenID Connect or SAML 2.0): its members sign
    in there instead of here."""

    class Kind(models.TextChoices):
        OIDC = "oidc", "OpenID Connect"
        SAML = "saml", "SAML 2.0"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="identity_providers"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OIDC)
    name = models.CharField(max_length=64)
    # OpenID Connect: the issuer URL; SAML: the IdP's entity ID, read from its metadata.
    issuer = models.CharField("issuer", max_length=255)
    client_id = models.CharField("client ID", max_length=255, blank=True)
    # Fernet token (federation.crypto); never shown again after it is saved.
    client_secret_encrypted = models.TextField(editable=False, blank=True)
    scopes = models.CharField(max_length=255, default=DEFAULT_SCOPES, blank=True)
    # SAML: where the IdP publishes its metadata (blank when pasted), and the metadata
    # as last read, which sign-ins use (an IdP that is down does not block the config).
    saml_metadata_url = models.URLField("IdP metadata URL", max_length=500, blank=True)
    saml_metadata_xml = models.TextField("IdP metadata XML", blank=True)
    saml_email_attribute = models.CharField(
        "email attribute", max_length=255, blank=True, default="email"
    )
    # The console's own SAML signing pair for this provider; the key Fernet-encrypted.
    sp_certificate = models.TextField(editable=False, blank=True)
    sp_private_key_encrypted = models.TextField(editable=False, blank=True)
    accept_provider_mfa = models.BooleanField(
        "accept the provider's MFA",
        default=False,
        help_text="Trust the provider's amr/acr claims as MFA; else ask for the console's code.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="federation_idp_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ProviderDomain(models.Model):
    """An email domain whose people sign in through one provider, across the instance,
    once its owner proved it holds the domain (a DNS TXT record carrying the token)."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, db_index=True)
    verification_token = models.CharField(max_length=64, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "domain"], name="federation_domain_per_provider"
            ),
            # Unverified claims never block anyone: only a proven one is exclusive.
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(verified_at__isnull=False),
                name="federation_domain_verified_once",
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def challenge_name(self) -> str:
        return f"{CHALLENGE_PREFIX}.{self.domain}"

    @property
    def challenge_value(self) -> str:
        return f"{CHALLENGE_VALUE_PREFIX}{self.verification_token}"


class ClaimRule(models.Model):
    """A claim of the ID token, or a SAML attribute, that puts the person in a group (and
    out when it stops)."""

    class Operator(models.TextChoices):
        EQUALS = "equals", "equals"
        CONTAINS = "contains", "contains"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="claim_rules"
    )
    claim = models.CharField(max_length=64)
    operator = models.CharField(max_length=8, choices=Operator.choices, default=Operator.CONTAINS)
    value = models.CharField(max_length=255)
    group = models.ForeignKey(
        "organizations.Group", on_delete=models.CASCADE, related_name="claim_rules"
    )
    # Whose rights bound the rule (the delegation ceiling), at creation and each sign-in.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["claim", "value"]

    def __str__(self) -> str:
        return f"{self.claim} {self.operator} {self.value!r} → {self.group}"

    def matches(self, claims: dict[str, object]) -> bool:
        found = claims.get(self.claim)
        if self.operator == self.Operator.EQUALS:
            return found == self.value or (found is not None and str(found) == self.value)
        if isinstance(found, list | tuple):
            return self.value in [str(item) for item in found]
        return isinstance(found, str) and self.value in found


class FederatedIdentity(models.Model):
    """A provider's subject (`sub`) signed in as a console account."""

    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="identities"
    )
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="federated_identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="federation_identity_sub"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.provider}"


class FederationSettings(models.Model):
    """An organization's single sign-on setting (kept beside its providers)."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="federation_settings"
    )
    sso_required = models.BooleanField(
        "require single sign-on",
        default=False,
        help_text="Members sign in through the provider only; owners keep password and code.",
    )

    def __str__(self) -> str:
        return f"single sign-on of {self.organization}"


class SAMLAssertionSeen(models.Model):
    """A SAML assertion already used to sign in, kept until it expires: a replay is
    refused in any process (the unique constraint decides)."""

    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="assertions_seen"
    )
    assertion_id = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "assertion_id"], name="federation_saml_assertion_once"
            ),
        ]

    def __str__(self) -> str:
        return self.assertion_id


class ProviderMFADevice(Device):
    """The provider's second factor, for django-otp: a session signed in through a provider
    whose MFA the organization accepts is verified by it. It checks no codes itself."""

    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="mfa_devices"
    )

    def verify_token(self, token: str) -> bool:
        return False
