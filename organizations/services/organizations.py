"""Writes to organizations: create, rename, and the authorization version that every
permission change bumps."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import F
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from iamportal.invalidation import CHANNEL, announce_on_commit
from iamportal.text import unsafe_characters
from organizations.models import Membership, Organization, Project

DEFAULT_PROJECT_NAME = "default"


ORGANIZATION_NAME_MAX_LENGTH = Organization._meta.get_field("name").max_length


def organization_name_clean(name: str) -> str:
    """The name as stored (surrounding spaces dropped), or ValidationError with a message.

    Every way a name comes in (sign-up, the organization forms, the admin, these services)
    checks it here: a newline breaks every email that names the organization, and bidi
    overrides or zero-width characters make it display as another name.
    """
    name = name.strip()
    if not name:
        raise ValidationError("Enter an organization name.", code="required")
    if len(name) > ORGANIZATION_NAME_MAX_LENGTH:
        raise ValidationError(
            f"Use at most {ORGANIZATION_NAME_MAX_LENGTH} characters (this name has {len(name)}).",
            code="max_length",
        )
    unsafe = unsafe_characters(name)
    if unsafe:
        codes = ", ".join(f"U+{ord(char):04X}" for char in unsafe)
        raise ValidationError(
            f"Use a name on one line without control or invisible characters (found {codes}).",
            code="invalid",
        )
    return name


# One statement, as the ORM's update was, that also announces the change to every process
# (iamportal.invalidation); sent even when the row is gone, so deleting an organization
# still drops its keys everywhere.
_BUMP_AND_NOTIFY = (
    'WITH bumped AS (UPDATE "organizations_organization" '
    'SET "authz_version" = "authz_version" + 1 WHERE "id" = %s RETURNING 1) '
    "SELECT pg_notify(%s, %s), (SELECT count(*) FROM bumped)"
)


def organization_bump_authz_version(*, organization: Organization) -> None:
    """Invalidate every cached permission of the organization, in the caller's transaction:
    other processes hear of it when the transaction commits (NOTIFY on PostgreSQL), this
    one at once on commit."""
    connection = connections[Organization.objects.db]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_BUMP_AND_NOTIFY, [organization.pk, CHANNEL, str(organization.pk)])
    else:
        Organization.objects.filter(pk=organization.pk).update(authz_version=F("authz_version") + 1)
    announce_on_commit(organization.pk)


@transaction.atomic
def organization_create(
    *, name: str, owner: User, request: HttpRequest | None = None
) -> Organization:
    """Create an organization with its default project and `owner` as its first owner."""
    if owner.managed_by_id is not None:
        raise ValidationError(
            "Accounts created by an organization cannot create or own organizations."
        )
    organization = Organization.objects.create(name=organization_name_clean(name))
    Project.objects.create(
        organization=organization,
        name=DEFAULT_PROJECT_NAME,
        description="Created with the organization.",
        is_default=True,
    )
    Membership.objects.create(organization=organization, user=owner, is_owner=True)
    record(
        action=events.ORGANIZATION_CREATED,
        organization=organization,
        actor=owner,
        target=organization,
        request=request,
    )
    return organization


@transaction.atomic
def organization_rename(
    *, organization: Organization, name: str, actor: User, request: HttpRequest | None = None
) -> Organization:
    # Read what is stored: a bound ModelForm has already changed the instance in memory.
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    before = organization.name
    organization.name = organization_name_clean(name)
    organization.save(update_fields=["name", "updated_at"])
    record(
        action=events.ORGANIZATION_UPDATED,
        organization=organization,
        actor=actor,
        target=organization,
        data=diff({"name": before}, {"name": organization.name}),
        request=request,
    )
    return organization
