"""Writes to API keys: create (the secret shown once, stored as a digest), disable and
enable again, delete, and authenticate a presented secret."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.tokens import token_digest
from audit import events
from audit.services import record
from iamportal.invalidation import listening, subscribe
from iamportal.prepared import PreparedLookup
from organizations.models import (
    APIKey,
    Application,
    Membership,
    Organization,
    Project,
)
from organizations.services.organizations import organization_bump_authz_version
from policies.delegation import require_within_rights
from policies.selectors.rules import compile_rules_for

ACCESS_KEY_PREFIX = "IAMK"
TOKEN_SEPARATOR = "."  # noqa: S105 (a separator, not a password)
# What a well-formed token's parts look like (bounded, so junk never reaches a query).
_ACCESS_KEY = re.compile(r"IAMK[A-Z0-9]{1,28}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")


# Last-use bookkeeping writes at most once a minute per key: busy keys would otherwise
# turn every API read into a write.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


# Compared against when the access key is unknown, so that case costs the same digest
# and comparison as a wrong secret.
_DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class CreatedAPIKey:
    """A new key and its secret: the only moment the secret exists outside its owner."""

    api_key: APIKey
    secret: str


def new_access_key() -> str:
    """A public id: the prefix and 16 base32 characters (80 random bits)."""
    return ACCESS_KEY_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode("ascii")


def new_secret() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def api_key_expiry_limit(organization: Organization, today: datetime.date) -> datetime.date | None:
    """The last expiry date the organization allows for a key created `today`, or None."""
    if organization.api_key_max_lifetime_days is None:
        return None
    return today + datetime.timedelta(days=organization.api_key_max_lifetime_days)


def api_key_expiry_cap(
    *, organization: Organization, created_at: datetime.datetime
) -> datetime.datetime | None:
    """The latest moment a key created at `created_at` may work under the lifetime cap.

    A key works while `now < min(key.expires_at, cap)`: lowering the cap takes effect
    at once for existing keys, including those created before there was one.
    """
    if organization.api_key_max_lifetime_days is None:
        return None
    return created_at + datetime.timedelta(days=organization.api_key_max_lifetime_days)


def expiry_datetime(expires_on: datetime.date) -> datetime.datetime:
    """A key "expiring on" a date stops working at 00:00 UTC that day."""
    return datetime.datetime.combine(expires_on, datetime.time.min, tzinfo=datetime.UTC)


def _bearer_data(api_key: APIKey) -> dict[str, str]:
    if api_key.bearer_application_id is not None:
        return {
            "type": "application",
            "id": str(api_key.bearer_application_id),
            "label": api_key.bearer_application.name,
        }
    return {
        "type": "user",
        "id": str(api_key.bearer_membership.user_id),
        "label": api_key.bearer_membership.user.email,
    }


def _key_data(api_key: APIKey) -> dict[str, Any]:
    return {
        "access_key": api_key.access_key,
        "bearer": _bearer_data(api_key),
        "description": api_key.description,
        "expires_at": api_key.expires_at.isoformat() if api_key.expires_at else None,
        "default_project": str(api_key.default_project_id) if api_key.default_project_id else None,
    }


@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    creator: Membership,
    bearer: Membership | Application,
    description: str = "",
    expires_on: datetime.date | None = None,
    default_project: Project | None = None,
    request: HttpRequest | None = None,
) -> CreatedAPIKey:
    """Create a key for `creator` themselves or for an application of the organization.

    Nobody creates a key for another human. When the organization caps key lifetimes,
    the key must expire within the cap. Returns the key with its secret; only the
    secret's digest is stored, so it can never be shown again.
    """
    if creator.organization_id != organization.pk:
        raise ValidationError("You are not a member of this organization.")
    if isinstance(bearer, Membership):
        if bearer.pk != creator.pk:
            raise ValidationError(
                {"bearer": "Nobody creates API keys for another person: they create their own."}
            )
        if not (bearer.is_active and bearer.user.is_active):
            raise ValidationError({"bearer": "A suspended user cannot create API keys."})
    elif bearer.organization_id != organization.pk:
        raise ValidationError({"bearer": "Choose an application of this organization."})
    description = description.strip()
    if len(description) > APIKey._meta.get_field("description").max_length:
        raise ValidationError({"description": "A description is at most 200 characters."})
    if default_project is not None and default_project.organization_id != organization.pk:
        raise ValidationError({"default_project": "Choose a project of this organization."})
    today = timezone.now().date()
    limit = api_key_expiry_limit(organization, today)
    if expires_on is not None and expires_on <= today:
        raise ValidationError({"expires_on": "Choose an expiry date after today."})
    if limit is not None and expires_on is None:
        raise ValidationError(
            {
                "expires_on": f"This organization requires API keys to expire within "
                f"{organization.api_key_max_lifetime_days} days: choose a date until "
                f"{limit.isoformat()}."
            }
        )
    if limit is not None and expires_on is not None and expires_on > limit:
        raise ValidationError(
            {
                "expires_on": f"Keys of this organization expire within "
                f"{organization.api_key_max_lifetime_days} days: choose a date until "
                f"{limit.isoformat()}."
            }
        )
    if isinstance(bearer, Application):
        # A key holds exactly its application's permissions: its creator must hold them.
        require_within_rights(
            organization=organization,
            actor=creator.user,
            request=request,
            after=compile_rules_for(bearer),
            principals=f"a key of application {bearer.name}",
        )
    secret = new_secret()
    api_key = APIKey.objects.create(
        organization=organization,
        access_key=new_access_key(),
        secret_hash=token_digest(secret),
        bearer_membership=bearer if isinstance(bearer, Membership) else None,
        bearer_application=bearer if isinstance(bearer, Application) else None,
        description=description,
        default_project=default_project,
        expires_at=expiry_datetime(expires_on) if expires_on else None,
        created_by=creator.user,
    )
    record(
        action=events.API_KEY_CREATED,
        organization=organization,
        actor=creator.user,
        target=api_key,
        data={"after": _key_data(api_key)},
        request=request,
    )
    return CreatedAPIKey(api_key=api_key, secret=secret)


@transaction.atomic
def api_key_delete(*, api_key: APIKey, actor: User, request: HttpRequest | None = None) -> None:
    """Revoke a key: it stops working at once (authentication reads the key each time)."""
    organization = api_key.organization
    record(
        action=events.API_KEY_DELETED,
        organization=organization,
        actor=actor,
        target=api_key,
        data={"before": _key_data(api_key)},
        request=request,
    )
    api_key.delete()
    # Nothing compiled depends on keys today; the bump keeps any future per-key cache honest.
    organization_bump_authz_version(organization=organization)


@transaction.atomic
def api_key_disable(
    *, api_key: APIKey, actor: User | None, reason: str, request: HttpRequest | None = None
) -> bool:
    """Refuse the key from now on, keeping it (`api_key_enable` undoes it); True when it
    was enabled. `actor` None: the system (the unused-key sweep)."""
    api_key = (
        APIKey.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=api_key.pk)
    )
    if api_key.disabled_at is not None:
        return False
    api_key.disabled_at, api_key.disabled_reason = timezone.now(), reason[:200]
    api_key.save(update_fields=["disabled_at", "disabled_reason"])
    # Like a revocation: every process drops the organization's cached key rows.
    organization_bump_authz_version(organization=api_key.organization)
    record(
        action=events.API_KEY_DISABLED,
        organization=api_key.organization,
        actor=actor,
        target=api_key,
        data={"reason": reason},
        request=request,
    )
    return True


@transaction.atomic
def api_key_enable(
    *, api_key: APIKey, actor: User | None, request: HttpRequest | None = None
) -> bool:
    """Let a disabled key work again; True when it was disabled. What it then holds (its
    bearer's permissions) must be within its author's, as for creating a key: `actor`, or
    the calling application (`request`) when None."""
    api_key = (
        APIKey.objects.select_for_update(of=("self",))
        .select_related("organization", "bearer_membership__user", "bearer_application")
        .get(pk=api_key.pk)
    )
    if api_key.disabled_at is None:
        return False
    bearer = api_key.bearer_membership or api_key.bearer_application
    require_within_rights(
        organization=api_key.organization,
        actor=actor,
        request=request,
        after=compile_rules_for(bearer),
        principals=f"API key {api_key.access_key}",
    )
    reason = api_key.disabled_reason
    api_key.disabled_at, api_key.disabled_reason = None, ""
    api_key.enabled_at = timezone.now()
    api_key.save(update_fields=["disabled_at", "disabled_reason", "enabled_at"])
    organization_bump_authz_version(organization=api_key.organization)
    record(
        action=events.API_KEY_ENABLED,
        organization=api_key.organization,
        actor=actor,
        target=api_key,
        data={"disabled_for": reason},
        request=request,
    )
    return True


# Every API request runs this lookup: its SQL is compiled once (iamportal.prepared).
_key_by_access_key: PreparedLookup[APIKey] = PreparedLookup(
    lambda access_key: (
        APIKey.objects.select_related(
            "organization", "bearer_membership__user", "bearer_application"
        )
        .filter(access_key=access_key)
        .order_by()
    )
)


@dataclass
class _KeyRow:
    """A key's looked-up row, and when this process last knew it used."""

    row: tuple[Any, ...]
    last_used_at: datetime.datetime | None
    generation: int | None = None
    expires: float = 0.0


# Key rows recently looked up, per process (settings.API_KEY_CACHE_SECONDS; 0 turns it
# off). Everything that can refuse or change a key (its deletion or disabling, its bearer's
# suspension, removal or deactivation, a new maximum key lifetime, an organization's
# deletion) bumps the organization's authorization version, which every process hears at
# once through iamportal.invalidation and drops the organization's rows; a row is served
# only under the listener generation it was read in (none is lost unheard) and for at most
# the setting's seconds, which bounds anything else (a bearer's new email in audit labels).
_KEY_CACHE_SIZE = 10_000
_cached_keys: dict[str, _KeyRow] = {}
_heard = 0  # announcements heard: a row read while one arrives is not kept


def _forget(organization_pk: str | None) -> None:
    global _heard
    _heard += 1
    if organization_pk is None:
        _cached_keys.clear()
        return
    for access_key, cached in list(_cached_keys.items()):
        if str(_key_by_access_key.value(cached.row, "organization_id")) == organization_pk:
            _cached_keys.pop(access_key, None)


subscribe(_forget)


def _key_row(access_key: str) -> _KeyRow | None:
    seconds = settings.API_KEY_CACHE_SECONDS
    generation = listening() if seconds > 0 else None
    if generation is not None:
        cached = _cached_keys.get(access_key)
        if cached and cached.generation == generation and cached.expires > time.monotonic():
            return cached
    heard = _heard
    row = _key_by_access_key.row(access_key)
    if row is None:
        return None  # unknown keys are never kept: junk cannot fill the cache
    found = _KeyRow(row, _key_by_access_key.value(row, "last_used_at"))
    if generation is not None and listening() == generation and _heard == heard:
        found.generation, found.expires = generation, time.monotonic() + seconds
        if len(_cached_keys) >= _KEY_CACHE_SIZE:
            _cached_keys.clear()
        _cached_keys[access_key] = found
    return found


def api_key_authenticate(
    *,
    access_key: str,
    secret: str,
    ip: str | None = None,
    now: datetime.datetime | None = None,
) -> APIKey | None:
    """The key for an access key and secret, or None when they do not open a live key.

    Refused: unknown access key, wrong secret (constant-time comparison of digests),
    expired or disabled key, or older than the organization's maximum key lifetime, bearer
    membership suspended or account deactivated. Records the last use (time and IP) at
    most once a minute.
    """
    now = now or timezone.now()
    found = _key_row(access_key)
    digest = token_digest(secret)
    if found is None:
        hmac.compare_digest(_DUMMY_DIGEST, digest)
        return None
    api_key = _key_by_access_key.build(found.row)
    if not hmac.compare_digest(api_key.secret_hash, digest):
        return None
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return None
    if api_key.disabled_at is not None:
        return None
    cap = api_key_expiry_cap(organization=api_key.organization, created_at=api_key.created_at)
    if cap is not None and cap <= now:
        return None
    bearer = api_key.bearer_membership
    if bearer is not None and not (bearer.is_active and bearer.user.is_active):
        return None
    # Checked on what this process knows first: a key used within the minute costs no
    # query. The conditional update keeps concurrent requests (and processes) to one write.
    cutoff = now - LAST_USED_RESOLUTION
    if found.last_used_at is None or found.last_used_at <= cutoff:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)
        if APIKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now, last_used_ip=ip):
            api_key.last_used_at, api_key.last_used_ip = now, ip
        found.last_used_at = now  # written, or by another request within the minute
    return api_key


def api_key_token(*, access_key: str, secret: str) -> str:
    """The token a client presents (`Authorization: Bearer <token>` or `X-Auth-Token`):
    `<access_key>.<secret>`. The access key finds the row through its unique index; the
    secret is then compared in constant time. Neither part contains a dot."""
    return f"{access_key}{TOKEN_SEPARATOR}{secret}"


def api_key_authenticate_token(
    *, token: str, ip: str | None = None, now: datetime.datetime | None = None
) -> APIKey | None:
    """`api_key_authenticate` for a presented token; a malformed one is refused without
    touching the database."""
    access_key, separator, secret = token.strip().partition(TOKEN_SEPARATOR)
    if not separator or not _ACCESS_KEY.fullmatch(access_key) or not _SECRET.fullmatch(secret):
        return None
    return api_key_authenticate(access_key=access_key, secret=secret, ip=ip, now=now)
