"""SCIM tokens: create (the secret shown once, stored as a digest), revoke, and
authenticate a presented bearer token for one organization."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.tokens import token_digest
from audit import events
from audit.services import record
from organizations.models import Membership, Organization
from scim.models import ScimToken

PREFIX = "SCIM"
_TOKEN = re.compile(r"(SCIM[A-Z2-7]{16})\.([A-Za-z0-9_-]{43})")
# Compared against when the prefix is unknown, so that case costs what a wrong secret does.
_DUMMY_DIGEST = hashlib.sha256(b"no such token").hexdigest()
# Last-use bookkeeping writes at most once a minute: provisioning runs bursts of requests.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)
MAX_TOKENS = 10  # per organization: one per identity provider, plus rotation


@dataclass(frozen=True)
class CreatedToken:
    """A new token and its bearer value: the only moment the value exists here."""

    token: ScimToken
    value: str


def _require_owner(organization: Organization, actor: User) -> None:
    if not Membership.objects.filter(
        organization=organization, user=actor, is_owner=True, status=Membership.Status.ACTIVE
    ).exists():
        raise PermissionDenied("Only owners manage SCIM tokens.")


@transaction.atomic
def scim_token_create(
    *, organization: Organization, actor: User, name: str, request: HttpRequest | None = None
) -> CreatedToken:
    """Create a token for an identity provider; only owners may (it provisions members).

    It acts with its creator's authority and stops working when they stop being an active
    owner of the organization."""
    _require_owner(organization, actor)
    name = name.strip()
    if not name or len(name) > ScimToken._meta.get_field("name").max_length:
        raise ValidationError({"name": "Name the token (at most 100 characters), e.g. Okta."})
    if organization.scim_tokens.count() >= MAX_TOKENS:
        raise ValidationError(
            f"An organization has at most {MAX_TOKENS} SCIM tokens: revoke one first."
        )
    prefix = PREFIX + base64.b32encode(secrets.token_bytes(10)).decode("ascii")
    secret = secrets.token_urlsafe(32)
    token = ScimToken.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        secret_hash=token_digest(secret),
        created_by=actor,
    )
    record(
        action=events.SCIM_TOKEN_CREATED,
        organization=organization,
        actor=actor,
        target=token,
        data={"name": name, "prefix": prefix},
        request=request,
    )
    return CreatedToken(token=token, value=f"{prefix}.{secret}")


@transaction.atomic
def scim_token_revoke(*, token: ScimToken, actor: User, request: HttpRequest | None = None) -> None:
    """Delete a token: the identity provider's next request is refused."""
    _require_owner(token.organization, actor)
    record(
        action=events.SCIM_TOKEN_REVOKED,
        organization=token.organization,
        actor=actor,
        target=token,
        data={"name": token.name, "prefix": token.prefix},
        request=request,
    )
    token.delete()


def scim_token_authenticate(
    *, organization_id: object, bearer: str, ip: str | None = None
) -> ScimToken | None:
    """The token of organization `organization_id` that `bearer` opens, or None.

    Refused alike: malformed, unknown, wrong secret (constant-time comparison), another
    organization's token (so nothing tells whether an organization exists), a creator no
    longer an active owner. Records the last use at most once a minute."""
    match = _TOKEN.fullmatch(bearer.strip())
    if match is None:
        return None
    prefix, secret = match.groups()
    digest = token_digest(secret)
    token = (
        ScimToken.objects.select_related("organization", "created_by").filter(prefix=prefix).first()
    )
    if token is None:
        hmac.compare_digest(_DUMMY_DIGEST, digest)
        return None
    if not hmac.compare_digest(token.secret_hash, digest):
        return None
    if str(token.organization_id) != str(organization_id) or token.created_by_id is None:
        return None
    if not Membership.objects.filter(
        organization_id=token.organization_id,
        user_id=token.created_by_id,
        is_owner=True,
        status=Membership.Status.ACTIVE,
        user__is_active=True,
    ).exists():
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token
