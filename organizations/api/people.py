"""API operations about the organization's users: list (the console's filters), read,
suspend, reactivate, remove. Through the same selectors and services as the console.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict
from organizations.api.resources import Tags
from organizations.models import Membership
from organizations.selectors import people as people_selectors
from organizations.services import people as people_services
from policies.authz import subject_of
from policies.guards import api_requires

router = Router(tags=["Users"])

# --------------------------------------------------------------------------- schemas


class NamedRef(Schema):
    id: uuid.UUID
    name: str


class UserOut(Schema):
    """A user of the organization: `id` is the membership's id (the user's place in this
    organization), `user_id` the account's."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    full_name: str
    kind: Literal["owner", "member", "guest"]
    status: str
    is_owner: bool
    mfa_enrolled: bool
    tags: dict[str, str]
    groups: list[NamedRef]
    policies: list[NamedRef]
    created_at: datetime.datetime


class UserPage(Schema):
    items: list[UserOut]
    next: str | None


class PrincipalTagsIn(Strict):
    """A principal's tags (users and applications), replaced as a whole."""

    tags: Tags = Field(
        description="Replaces every tag: key -> value strings, at most 50; keys of 1 to 64 "
        "letters, digits or `_.:/+=@-`, values of at most 256 characters (the rules of "
        "resource tags). Policy conditions read them as `principal.tags`."
    )


class UserFilterQuery(Schema):
    q: str = ""
    kind: Literal["", "owner", "member", "guest"] = ""
    status: Literal["", "active", "suspended"] = ""
    group: uuid.UUID | None = None
    mfa: Literal["", "yes", "no"] = ""


def user_out(membership: Membership) -> UserOut:
    """`membership` as the API shows it; read through `users_of`/`user_for` (MFA state)."""
    return UserOut(
        id=membership.pk,
        user_id=membership.user_id,
        email=membership.user.email,
        full_name=membership.user.full_name,
        kind=membership.kind,  # type: ignore[arg-type]
        status=membership.status,
        is_owner=membership.is_owner,
        mfa_enrolled=bool(getattr(membership, "mfa_enrolled", False)),
        tags=membership.tags,
        groups=[NamedRef(id=g.pk, name=g.name) for g in membership.groups.all()],
        policies=[
            NamedRef(id=a.policy.pk, name=a.policy.name)
            for a in membership.policy_attachments.all()
        ],
        created_at=membership.created_at,
    )


def _reread(request: HttpRequest, membership_id: object) -> UserOut:
    return user_out(
        people_selectors.user_for(
            organization=request.organization,  # type: ignore[attr-defined]
            membership_id=membership_id,
        )
    )


def _user(request: HttpRequest, membership_id: uuid.UUID) -> Membership:
    return people_selectors.user_for(
        organization=request.organization,  # type: ignore[attr-defined]
        membership_id=membership_id,
    )


# ------------------------------------------------------------------------ operations


@router.get(
    "/users", response={200: UserPage, **error_responses(400, 401, 403)}, operation_id="users_list"
)
@api_requires("iam:users:list")
def users_list(
    request: HttpRequest, filters: Query[UserFilterQuery], paging: Query[PageQuery]
) -> UserPage:
    """The organization's users, filtered as the console's users page filters them
    (`q` in email or name, `kind`, `status`, `group` id, `mfa` yes/no), by email."""
    queryset = people_selectors.users_of(
        request.organization,  # type: ignore[attr-defined]
        people_selectors.UserFilters(
            q=filters.q,
            kind=filters.kind,
            status=filters.status,
            group=str(filters.group or ""),
            mfa=filters.mfa,
        ),
    )
    rows, cursor = page_of(queryset, paging, key="user__email")
    return UserPage(items=[user_out(m) for m in rows], next=cursor)


@router.get(
    "/users/{membership_id}",
    response={200: UserOut, **error_responses(401, 403, 404)},
    operation_id="users_read",
)
@api_requires("iam:users:read")
def users_read(request: HttpRequest, membership_id: uuid.UUID) -> UserOut:
    """One user, by membership id."""
    return _reread(request, membership_id)


@router.post(
    "/users/{membership_id}/suspend",
    response={200: UserOut, **error_responses(400, 401, 403, 404)},
    operation_id="users_suspend",
)
@api_requires("iam:users:suspend")
def users_suspend(request: HttpRequest, membership_id: uuid.UUID) -> UserOut:
    """Suspend a user: they keep their groups and policies but are denied everything and
    their API keys stop working. Never oneself, never the last owner; only owners suspend
    owners (so an application's key, e.g. a directory sync, suspends anyone else)."""
    membership = _user(request, membership_id)
    people_services.membership_suspend(
        membership=membership,
        actor=subject_of(request),  # type: ignore[arg-type]
        request=request,
    )
    return _reread(request, membership.pk)


@router.post(
    "/users/{membership_id}/reactivate",
    response={200: UserOut, **error_responses(400, 401, 403, 404)},
    operation_id="users_reactivate",
)
@api_requires("iam:users:suspend")
def users_reactivate(request: HttpRequest, membership_id: uuid.UUID) -> UserOut:
    """Reactivate a suspended user (the delegation ceiling applies: what comes back must be
    held by the caller)."""
    membership = _user(request, membership_id)
    people_services.membership_reactivate(
        membership=membership,
        actor=subject_of(request),  # type: ignore[arg-type]
        request=request,
    )
    return _reread(request, membership.pk)


@router.put(
    "/users/{membership_id}/tags",
    response={200: UserOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="users_set_tags",
)
@api_requires("iam:users:update")
def users_set_tags(
    request: HttpRequest, membership_id: uuid.UUID, payload: PrincipalTagsIn
) -> UserOut:
    """Replace a user's tags. Never one's own; only owners retag owners; the delegation
    ceiling applies (a rule whose condition reads `principal.tags` may start matching, so
    the caller must hold its actions)."""
    membership = _user(request, membership_id)
    people_services.membership_set_tags(
        membership=membership,
        tags=payload.tags,
        actor=subject_of(request),  # type: ignore[arg-type]
        request=request,
    )
    return _reread(request, membership.pk)


@router.delete(
    "/users/{membership_id}",
    response={204: None, **error_responses(400, 401, 403, 404)},
    operation_id="users_remove",
)
@api_requires("iam:users:remove")
def users_remove(request: HttpRequest, membership_id: uuid.UUID) -> Status:
    """Remove a user from the organization (an account created by the organization is
    deleted with it). Never oneself, never the last owner; only owners remove owners."""
    membership = _user(request, membership_id)
    people_services.membership_remove(
        membership=membership,
        actor=subject_of(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(204, None)
