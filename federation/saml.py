"""SAML 2.0 with the console as service provider, through pysaml2 (signatures are checked
by the xmlsec1 binary it drives): the IdP's metadata, the signed authentication request
(HTTP-Redirect), and the response the IdP POSTs back, whose assertion must be signed,
for us (audience, destination), in its validity window and an answer to our request.

The result is a claims dict like an ID token's, so that sign-in, just-in-time accounts,
linking and claim rules are one mechanism for both protocols (federation.signin).
"""

from __future__ import annotations

import datetime
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, SAMLError
from saml2.attribute_converter import ac_factory
from saml2.client import Saml2Client
from saml2.config import Config, SPConfig
from saml2.mdstore import MetadataStore
from saml2.metadata import entity_descriptor
from saml2.response import (
    IncorrectlySigned,
    StatusError,
    UnsolicitedResponse,
    VerificationError,
)
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_TRANSIENT
from saml2.sigver import SignatureError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly
from saml2.xmldsig import SIG_RSA_SHA256

from federation import crypto, oidc
from federation.models import IdentityProvider, SAMLAssertionSeen

# Clock difference tolerated with the IdP, in seconds (as the ID token's leeway).
LEEWAY_SECONDS = 60
# Authentication context classes that mean a second factor (SAML 2.0 authn context
# classes, and Entra ID's), told to the sign-in as the OpenID `amr` value "mfa".
MFA_CONTEXTS = frozenset(
    {
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard",
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        "http://schemas.microsoft.com/claims/multipleauthn",
    }
)


class MetadataInvalid(Exception):
    """The IdP metadata cannot be used (not XML, no single IdP, no sign-on endpoint)."""


class ResponseRefused(Exception):
    """The SAML response is not one we accept; `reason` is a short code for the audit."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ServiceProvider:
    """The console's side for one provider, as the IdP must be told."""

    entity_id: str
    acs_url: str


def service_provider(request: HttpRequest, provider: IdentityProvider) -> ServiceProvider:
    """The console's SP for this provider: its metadata URL is its entity ID."""
    return ServiceProvider(
        entity_id=request.build_absolute_uri(
            reverse("federation:saml_metadata", args=[provider.pk])
        ),
        acs_url=request.build_absolute_uri(reverse("federation:saml_acs", args=[provider.pk])),
    )


@dataclass(frozen=True)
class IdPMetadata:
    entity_id: str
    sso_url: str


def _xmlsec() -> str:
    binary = shutil.which("xmlsec1")
    if binary is None:
        raise SAMLError("The xmlsec1 program is not installed (see scripts/system-deps).")
    return binary


def signing_pair(common_name: str) -> tuple[str, str]:
    """A fresh self-signed certificate and its private key (PEM), for one provider."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def read_metadata(xml: str) -> IdPMetadata:
    """The IdP's entity ID and sign-on endpoint; raises MetadataInvalid."""
    store = MetadataStore(ac_factory(), Config())
    try:
        store.load("inline", xml)
    except Exception as error:  # pysaml2 raises plain exceptions for broken documents
        raise MetadataInvalid("The metadata is not valid SAML metadata.") from error
    idps = list(store.identity_providers())
    if len(idps) != 1:
        raise MetadataInvalid("The metadata must describe exactly one identity provider.")
    entity_id = idps[0]
    endpoints = store.single_sign_on_service(entity_id, BINDING_HTTP_REDIRECT)
    if not endpoints:
        raise MetadataInvalid("The identity provider offers no HTTP-Redirect sign-on endpoint.")
    if not store.certs(entity_id, "idpsso", "signing"):
        raise MetadataInvalid("The metadata names no signing certificate.")
    return IdPMetadata(entity_id=entity_id, sso_url=endpoints[0]["location"])


def fetch_metadata(url: str) -> str:
    """The metadata document at `url` (bounded like OpenID discovery)."""
    try:
        return oidc.fetch_bytes(url).decode()
    except UnicodeDecodeError as error:
        raise MetadataInvalid("The metadata is not UTF-8 text.") from error


@contextmanager
def _client(provider: IdentityProvider, sp: ServiceProvider) -> Iterator[Saml2Client]:
    """A pysaml2 client for the provider; it reads key and certificate from files, so
    they live in a private temporary directory for the call only."""
    with tempfile.TemporaryDirectory(prefix="iamportal-saml-") as directory:
        key_file, cert_file = Path(directory, "sp.key"), Path(directory, "sp.crt")
        key_file.write_text(crypto.decrypt(provider.sp_private_key_encrypted))
        cert_file.write_text(provider.sp_certificate)
        config = SPConfig()
        config.load(
            {
                "entityid": sp.entity_id,
                "xmlsec_binary": _xmlsec(),
                "key_file": str(key_file),
                "cert_file": str(cert_file),
                "encryption_keypairs": [{"key_file": str(key_file), "cert_file": str(cert_file)}],
                "metadata": {"inline": [provider.saml_metadata_xml]},
                "accepted_time_diff": LEEWAY_SECONDS,
                "allow_unknown_attributes": True,
                "service": {
                    "sp": {
                        "name": provider.organization.name,
                        "endpoints": {
                            "assertion_consumer_service": [(sp.acs_url, BINDING_HTTP_POST)]
                        },
                        "want_assertions_signed": True,
                        "want_response_signed": False,
                        "authn_requests_signed": True,
                        "allow_unsolicited": False,
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    }
                },
            }
        )
        yield Saml2Client(config=config)


def sp_metadata(provider: IdentityProvider, sp: ServiceProvider) -> str:
    """The console's SP metadata for this provider, to paste or point the IdP at."""
    with _client(provider, sp) as client:
        return str(entity_descriptor(client.config))


def authn_request(provider: IdentityProvider, sp: ServiceProvider) -> tuple[str, str]:
    """(request id, where to send the browser) for a signed authentication request."""
    with _client(provider, sp) as client:
        request_id, info = client.prepare_for_authenticate(
            entityid=provider.issuer,
            binding=BINDING_HTTP_REDIRECT,
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
    location = dict(info["headers"])["Location"]
    return request_id, location


def _refusal(error: Exception) -> ResponseRefused:
    if isinstance(error, SignatureError) and "missing" in str(error).lower():
        return ResponseRefused("unsigned", "The SAML assertion is not signed.")
    if isinstance(error, SignatureError | IncorrectlySigned | SigverError):
        return ResponseRefused("bad_signature", "The SAML assertion's signature is not valid.")
    if isinstance(error, ResponseLifetimeExceed | ToEarly):
        return ResponseRefused("expired", "The SAML assertion is expired or not valid yet.")
    if isinstance(error, UnsolicitedResponse):
        return ResponseRefused(
            "in_response_to_mismatch", "The SAML response does not answer this sign-in."
        )
    if isinstance(error, StatusError):
        return ResponseRefused("provider_error", f"The identity provider said no ({error}).")
    if "AudienceRestrictions" in str(error):  # pysaml2 raises a bare Exception for it
        return ResponseRefused("wrong_audience", "The SAML assertion is meant for someone else.")
    if isinstance(error, VerificationError):
        return ResponseRefused("invalid_assertion", "The SAML assertion could not be verified.")
    return ResponseRefused("malformed", "The SAML response could not be read.")


def _claims(response: Any, email_attribute: str) -> dict[str, Any]:
    attributes = {str(name): list(values) for name, values in (response.ava or {}).items()}
    name_id = response.name_id
    email = ""
    if attributes.get(email_attribute):
        email = str(attributes[email_attribute][0])
    elif name_id is not None and name_id.format == NAMEID_FORMAT_EMAILADDRESS:
        email = str(name_id.text or "")
    # A transient NameID changes at each sign-in: the address is the stable subject then.
    transient = name_id is None or name_id.format == NAMEID_FORMAT_TRANSIENT
    subject = email if transient else str(name_id.text)
    contexts = [str(ref) for ref, *_ in response.authn_info() if ref]
    return {
        **attributes,
        "sub": subject,
        "email": email,
        # The IdP's signed assertion is its word for the address, as email_verified is.
        "email_verified": bool(email),
        "name": str((attributes.get("displayName") or attributes.get("name") or [""])[0]),
        "acr": " ".join(contexts),
        "amr": ["mfa"] if MFA_CONTEXTS.intersection(contexts) else [],
    }


def validate_response(
    provider: IdentityProvider, sp: ServiceProvider, saml_response: str, request_id: str
) -> dict[str, Any]:
    """The claims of a POSTed SAML response answering `request_id`, once its signed
    assertion, audience, destination and validity hold and it was never used before."""
    with _client(provider, sp) as client:
        try:
            response = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}
            )
        except Exception as error:  # pysaml2's checks raise a wide range of types
            raise _refusal(error) from error
        if response is None:  # pysaml2's answer for a wrong destination or issue instant
            raise ResponseRefused(
                "invalid_response", "The SAML response is not addressed to this console."
            )
        if response.assertion is None or not response.assertion.id:
            raise ResponseRefused("malformed", "The SAML response carries no assertion.")
        claims = _claims(response, provider.saml_email_attribute or "email")
        _use_once(provider, str(response.assertion.id), response.not_on_or_after)
    return claims


def _use_once(provider: IdentityProvider, assertion_id: str, not_on_or_after: int) -> None:
    """Refuse an assertion seen before; remember this one until it expires (+ leeway)."""
    now = timezone.now()
    expires = now + datetime.timedelta(seconds=LEEWAY_SECONDS)
    if not_on_or_after:
        expires = max(
            expires,
            datetime.datetime.fromtimestamp(not_on_or_after, datetime.UTC)
            + datetime.timedelta(seconds=LEEWAY_SECONDS),
        )
    SAMLAssertionSeen.objects.filter(expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            SAMLAssertionSeen.objects.create(
                provider=provider, assertion_id=assertion_id, expires_at=expires
            )
    except IntegrityError:
        raise ResponseRefused(
            "replayed", "This SAML assertion was used before: sign in again."
        ) from None
