"""API operations about API keys: for now, the calling key's own identity."""

from __future__ import annotations

import datetime
import uuid
from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema

from iamportal.api_errors import error_responses
from organizations.models import APIKey
from policies.authz import principal_of
from policies.guards import api_any_key

router = Router(tags=["API keys"])


class OrganizationOut(Schema):
    id: uuid.UUID
    name: str


class PrincipalOut(Schema):
    """A user (its account id, as `POST /authorize` names users) or an application."""

    type: Literal["user", "application"]
    id: uuid.UUID
    label: str


class KeyOut(Schema):
    id: uuid.UUID
    access_key: str
    description: str
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None


class MeOut(Schema):
    organization: OrganizationOut
    bearer: PrincipalOut
    api_key: KeyOut


@router.get("/me", response={200: MeOut, **error_responses(401)}, operation_id="me")
@api_any_key
def me(request: HttpRequest) -> MeOut:
    """The calling key: its organization, its bearer and the key itself."""
    api_key: APIKey = request.api_key  # type: ignore[attr-defined]
    principal = principal_of(request.principal)  # type: ignore[attr-defined]
    return MeOut(
        organization=OrganizationOut(id=api_key.organization.pk, name=api_key.organization.name),
        bearer=PrincipalOut(type=principal.type, id=principal.id, label=principal.label),
        api_key=KeyOut(
            id=api_key.pk,
            access_key=api_key.access_key,
            description=api_key.description,
            expires_at=api_key.expires_at,
            last_used_at=api_key.last_used_at,
        ),
    )
