"""API operations about invitations: list, create (the links are returned once, as the
console shows them once), resend (a new link), revoke. Through the console's services."""

from __future__ import annotations

import datetime
import uuid
from typing import Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from accounts.emails import canonical_email_or_none
from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_membership
from organizations.api.people import NamedRef
from organizations.models import Group, Invitation, Organization
from organizations.selectors import invitations as invitation_selectors
from organizations.services import invitations as invitation_services
from organizations.services.invitations import MAX_INVITATIONS_AT_ONCE
from policies.guards import api_requires

router = Router(tags=["Invitations"])

Role = Literal["", "owner", "tech", "billing", "readonly"]


class InvitationOut(Schema):
    id: uuid.UUID
    email: str
    role: Role
    status: Literal["pending", "accepted", "revoked"]
    groups: list[NamedRef]
    invited_by: str | None = Field(description="The email of whoever issued the live link.")
    created_at: datetime.datetime
    expires_at: datetime.datetime
    accepted_at: datetime.datetime | None


class InvitationPage(Schema):
    items: list[InvitationOut]
    next: str | None


class IssuedOut(Schema):
    """An invitation and its link: shown this once, only its digest is stored."""

    invitation: InvitationOut
    link: str


class IssuedList(Schema):
    invitations: list[IssuedOut]


class InvitationsIn(Strict):
    emails: list[str] = Field(min_length=1, max_length=MAX_INVITATIONS_AT_ONCE)
    role: Role = ""
    groups: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class StatusQuery(Schema):
    status: Literal["", "pending", "accepted", "revoked"] = ""


def invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.pk,
        email=invitation.email,
        role=invitation.role,  # type: ignore[arg-type]
        status=invitation.status,  # type: ignore[arg-type]
        groups=[NamedRef(id=g.pk, name=g.name) for g in invitation.groups.all()],
        invited_by=invitation.invited_by.email if invitation.invited_by else None,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
    )


def _emails(values: list[str]) -> list[str]:
    """The canonical addresses, without duplicates, in the order given; any invalid one is
    a 400 naming it."""
    canonical: dict[str, None] = {}
    invalid = []
    for value in values:
        email = canonical_email_or_none(value.strip()) if len(value) <= 254 else None
        if email is None:
            invalid.append(f"{value[:254]!r} is not a valid email address.")
        else:
            canonical[email] = None
    if invalid:
        raise ValidationError({"emails": invalid})
    return list(canonical)


def _groups(organization: Organization, ids: list[uuid.UUID]) -> list[Group]:
    groups = list(Group.objects.filter(organization=organization, pk__in=set(ids)))
    if len(groups) != len(set(ids)):
        raise ValidationError({"groups": "Choose groups of this organization."})
    return groups


def _invitation(request: HttpRequest, invitation_id: uuid.UUID) -> Invitation:
    return invitation_selectors.invitation_for(
        organization=request.organization,  # type: ignore[attr-defined]
        invitation_id=invitation_id,
    )


@router.get(
    "/invitations",
    response={200: InvitationPage, **error_responses(400, 401, 403)},
    operation_id="invitations_list",
)
@api_requires("iam:invitations:list")
def invitations_list(
    request: HttpRequest, filters: Query[StatusQuery], paging: Query[PageQuery]
) -> InvitationPage:
    """The organization's invitations, oldest first, optionally of one `status`."""
    queryset = invitation_selectors.invitations_of(
        request.organization,  # type: ignore[attr-defined]
        filters.status,
    )
    rows, cursor = page_of(queryset, paging, key="created_at")
    return InvitationPage(items=[invitation_out(i) for i in rows], next=cursor)


@router.post(
    "/invitations",
    response={201: IssuedList, **error_responses(400, 401, 403)},
    operation_id="invitations_create",
)
@api_requires("iam:users:invite")
def invitations_create(request: HttpRequest, payload: InvitationsIn) -> Status:
    """Invite each address (all or nothing) with a legacy `role` and `groups`. Each link is
    in this response only: it is emailed, and only its digest is stored. Only owners invite
    owners; the delegation ceiling applies to the role's and the groups' policies."""
    organization = request.organization  # type: ignore[attr-defined]
    issued = invitation_services.invitations_create(
        organization=organization,
        actor=acting_membership(request),
        emails=_emails(payload.emails),
        role=payload.role,
        groups=_groups(organization, payload.groups),
        request=request,
    )
    return Status(
        201,
        IssuedList(
            invitations=[
                IssuedOut(invitation=invitation_out(item.invitation), link=item.link)
                for item in issued
            ]
        ),
    )


@router.post(
    "/invitations/{invitation_id}/resend",
    response={200: IssuedOut, **error_responses(400, 401, 403, 404)},
    operation_id="invitations_resend",
)
@api_requires("iam:invitations:resend")
def invitations_resend(request: HttpRequest, invitation_id: uuid.UUID) -> IssuedOut:
    """A new link and expiry for a pending invitation (the old link dies); the new link is
    in this response only."""
    issued = invitation_services.invitation_resend(
        invitation=_invitation(request, invitation_id),
        actor=acting_membership(request),
        request=request,
    )
    return IssuedOut(
        invitation=invitation_out(_invitation(request, issued.invitation.pk)), link=issued.link
    )


@router.post(
    "/invitations/{invitation_id}/revoke",
    response={200: InvitationOut, **error_responses(400, 401, 403, 404)},
    operation_id="invitations_revoke",
)
@api_requires("iam:invitations:revoke")
def invitations_revoke(request: HttpRequest, invitation_id: uuid.UUID) -> InvitationOut:
    """Revoke a pending invitation: its link stops working."""
    invitation = _invitation(request, invitation_id)
    invitation_services.invitation_revoke(
        invitation=invitation, actor=acting_membership(request), request=request
    )
    return invitation_out(_invitation(request, invitation.pk))
