"""API operations about groups: list, create, read, update, delete, their users and
applications. Through the console's services: membership changes are held to the
delegation ceiling and bump the authorization version."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any

from django.db.models.functions import Lower
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict, patched
from organizations.api.auth import acting_user
from organizations.models import Group
from organizations.selectors import groups as group_selectors
from organizations.selectors import people as people_selectors
from organizations.selectors.applications import application_for
from organizations.services import groups as group_services
from policies.guards import api_requires
from policies.lockout import api_refuses_self_lockout

router = Router(tags=["Groups"])


class GroupOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    member_count: int
    application_count: int
    policy_count: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


class GroupPage(Schema):
    items: list[GroupOut]
    next: str | None


class GroupIn(Strict):
    name: str = Field(max_length=64)
    description: str = Field("", max_length=1000)


class GroupPatch(Strict):
    name: str | None = Field(None, max_length=64)
    description: str | None = Field(None, max_length=1000)


class SearchQuery(Schema):
    q: str = Field("", max_length=200)


class MemberOut(Schema):
    """A user in the group: `id` is the membership's id (as in `/users`)."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    full_name: str
    status: str


class MemberPage(Schema):
    items: list[MemberOut]
    next: str | None


class ApplicationRef(Schema):
    id: uuid.UUID
    name: str


class GroupApplicationPage(Schema):
    items: list[ApplicationRef]
    next: str | None


def _group(request: HttpRequest, group_id: uuid.UUID) -> Group:
    return group_selectors.group_for(
        organization=request.organization,  # type: ignore[attr-defined]
        group_id=group_id,
    )


def _group_out(request: HttpRequest, group_id: object) -> GroupOut:
    """The group with its counts, read again after a change."""
    group = group_selectors.groups_of(request.organization).get(pk=group_id)  # type: ignore[attr-defined]
    return GroupOut.from_orm(group)


@router.get(
    "/groups",
    response={200: GroupPage, **error_responses(400, 401, 403)},
    operation_id="groups_list",
)
@api_requires("iam:groups:list")
def groups_list(
    request: HttpRequest, search: Query[SearchQuery], paging: Query[PageQuery]
) -> GroupPage:
    """The organization's groups by name, `q` searching names and descriptions."""
    queryset = group_selectors.groups_of(
        request.organization,  # type: ignore[attr-defined]
        search.q,
    ).annotate(sort_name=Lower("name"))
    rows, cursor = page_of(queryset, paging, key="sort_name")
    return GroupPage(items=[GroupOut.from_orm(g) for g in rows], next=cursor)


@router.post(
    "/groups",
    response={201: GroupOut, **error_responses(400, 401, 403)},
    operation_id="groups_create",
)
@api_requires("iam:groups:create")
def groups_create(request: HttpRequest, payload: GroupIn) -> Status:
    """A new, empty group; names are unique in the organization."""
    group = group_services.group_create(
        organization=request.organization,  # type: ignore[attr-defined]
        actor=acting_user(request),  # type: ignore[arg-type]
        name=payload.name,
        description=payload.description,
        request=request,
    )
    return Status(201, _group_out(request, group.pk))


@router.get(
    "/groups/{group_id}",
    response={200: GroupOut, **error_responses(401, 403, 404)},
    operation_id="groups_read",
)
@api_requires("iam:groups:read")
def groups_read(request: HttpRequest, group_id: uuid.UUID) -> GroupOut:
    """One group with its counts; its users and applications are paged below it."""
    return _group_out(request, _group(request, group_id).pk)


@router.get(
    "/groups/{group_id}/members",
    response={200: MemberPage, **error_responses(400, 401, 403, 404)},
    operation_id="groups_members",
)
@api_requires("iam:groups:read")
def groups_members(
    request: HttpRequest, group_id: uuid.UUID, paging: Query[PageQuery]
) -> MemberPage:
    """The group's users, by email."""
    members = group_selectors.group_members(_group(request, group_id))
    rows, cursor = page_of(members, paging, key="user__email")
    return MemberPage(
        items=[
            MemberOut(
                id=m.pk,
                user_id=m.user_id,
                email=m.user.email,
                full_name=m.user.full_name,
                status=m.status,
            )
            for m in rows
        ],
        next=cursor,
    )


@router.get(
    "/groups/{group_id}/applications",
    response={200: GroupApplicationPage, **error_responses(400, 401, 403, 404)},
    operation_id="groups_applications",
)
@api_requires("iam:groups:read")
def groups_applications(
    request: HttpRequest, group_id: uuid.UUID, paging: Query[PageQuery]
) -> GroupApplicationPage:
    """The group's applications, by name."""
    applications = _group(request, group_id).applications.annotate(sort_name=Lower("name"))
    rows, cursor = page_of(applications, paging, key="sort_name")
    return GroupApplicationPage(
        items=[ApplicationRef(id=a.pk, name=a.name) for a in rows], next=cursor
    )


@router.patch(
    "/groups/{group_id}",
    response={200: GroupOut, **error_responses(400, 401, 403, 404)},
    operation_id="groups_update",
)
@api_requires("iam:groups:update")
def groups_update(request: HttpRequest, group_id: uuid.UUID, payload: GroupPatch) -> GroupOut:
    """Rename a group or change its description (omitted fields are kept)."""
    group = _group(request, group_id)
    group_services.group_update(
        group=group,
        actor=acting_user(request),  # type: ignore[arg-type]
        **patched(payload, group, "name", "description"),
        request=request,
    )
    return _group_out(request, group.pk)


@router.delete(
    "/groups/{group_id}",
    response={204: None, **error_responses(400, 401, 403, 404, 409)},
    operation_id="groups_delete",
)
@api_requires("iam:groups:delete")
@api_refuses_self_lockout
def groups_delete(request: HttpRequest, group_id: uuid.UUID) -> Status:
    """Delete a group: its users and applications lose its policies at once."""
    group_services.group_delete(
        group=_group(request, group_id),
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(204, None)


_MEMBER_RESPONSES = {200: GroupOut, **error_responses(400, 401, 403, 404, 409)}


def _change_members(
    request: HttpRequest,
    group_id: uuid.UUID,
    change: Callable[..., bool],
    *,
    membership_id: uuid.UUID | None = None,
    application_id: uuid.UUID | None = None,
) -> GroupOut:
    """Run one of the group services' idempotent member changes on a user (membership id)
    or an application as the key's bearer; answers the group as it now stands."""
    organization = request.organization  # type: ignore[attr-defined]
    group = _group(request, group_id)
    if membership_id is not None:
        principal: dict[str, Any] = {
            "membership": people_selectors.user_for(
                organization=organization, membership_id=membership_id
            )
        }
    else:
        principal = {
            "application": application_for(organization=organization, application_id=application_id)
        }
    change(group=group, actor=acting_user(request), request=request, **principal)
    return _group_out(request, group.pk)


@router.put(
    "/groups/{group_id}/members/{membership_id}",
    response=_MEMBER_RESPONSES,
    operation_id="groups_add_user",
)
@api_requires("iam:groups:update")
@api_refuses_self_lockout
def groups_add_user(
    request: HttpRequest, group_id: uuid.UUID, membership_id: uuid.UUID
) -> GroupOut:
    """Add a user (membership id) to the group (idempotent). Refused (403
    `delegation_refused`) when the group's policies grant what the caller does not hold."""
    return _change_members(
        request, group_id, group_services.group_add_member, membership_id=membership_id
    )


@router.delete(
    "/groups/{group_id}/members/{membership_id}",
    response=_MEMBER_RESPONSES,
    operation_id="groups_remove_user",
)
@api_requires("iam:groups:update")
@api_refuses_self_lockout
def groups_remove_user(
    request: HttpRequest, group_id: uuid.UUID, membership_id: uuid.UUID
) -> GroupOut:
    """Take a user out of the group (idempotent); lifting a deny of the group's is held to
    the delegation ceiling."""
    return _change_members(
        request,
        group_id,
        group_services.group_remove_member,
        membership_id=membership_id,
    )


@router.put(
    "/groups/{group_id}/applications/{application_id}",
    response=_MEMBER_RESPONSES,
    operation_id="groups_add_application",
)
@api_requires("iam:groups:update")
@api_refuses_self_lockout
def groups_add_application(
    request: HttpRequest, group_id: uuid.UUID, application_id: uuid.UUID
) -> GroupOut:
    """Add an application to the group (idempotent), within the delegation ceiling."""
    return _change_members(
        request,
        group_id,
        group_services.group_add_application,
        application_id=application_id,
    )


@router.delete(
    "/groups/{group_id}/applications/{application_id}",
    response=_MEMBER_RESPONSES,
    operation_id="groups_remove_application",
)
@api_requires("iam:groups:update")
@api_refuses_self_lockout
def groups_remove_application(
    request: HttpRequest, group_id: uuid.UUID, application_id: uuid.UUID
) -> GroupOut:
    """Take an application out of the group (idempotent)."""
    return _change_members(
        request,
        group_id,
        group_services.group_remove_application,
        application_id=application_id,
    )
