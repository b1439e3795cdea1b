"""API operations on the resources platform services register in projects (#14): list
(one type at a time), create, read, update, delete.

Each resource type has its own actions (`compute:instances:create`, ...) and the type is in
the query, the body or the stored resource, so each operation is guarded by the type's
action decided in the project (`policies.guards.api_requires_on_type` and
`api_requires_on_resource`), as the console's resource pages are: a service holding
`compute:instances:*` in one project manages that project's instances and nothing else.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import StringConstraints

from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_user
from organizations.models import Project, Resource
from organizations.selectors import resources as resource_selectors
from organizations.services import resources as resource_services
from organizations.tags import TAG_VALUE_MAX_LENGTH, TAGS_MAX
from policies.catalogue import RESOURCE_TYPES
from policies.guards import api_requires_on_resource, api_requires_on_type

router = Router(tags=["Resources"])

ResourceTypeKey = Literal[tuple(RESOURCE_TYPES)]  # type: ignore[valid-type]
TYPES_TEXT = ", ".join(f"`{key}`" for key in RESOURCE_TYPES)
Name = Annotated[str, StringConstraints(min_length=1, max_length=resource_services.NAME_MAX_LENGTH)]
TagValue = Annotated[str, StringConstraints(max_length=TAG_VALUE_MAX_LENGTH)]
Tags = Annotated[dict[str, TagValue], Field(max_length=TAGS_MAX)]
_TAGS_HELP = (
    "Key -> value strings, at most 50; keys of 1 to 64 letters, digits or `_.:/+=@-`, "
    "values of at most 256 characters. Policy conditions read them (`resource.tags`)."
)


class ResourceOut(Schema):
    id: uuid.UUID
    project: uuid.UUID
    type: str
    name: str
    tags: dict[str, str]
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ResourcePage(Schema):
    items: list[ResourceOut]
    next: str | None = Field(description="Cursor of the next page; null on the last one.")


class ResourceQuery(Schema):
    type: ResourceTypeKey = Field(description=f"One of {TYPES_TEXT}: each has its own `list`.")
    q: str = Field(
        "",
        max_length=200,
        description="Part of a name, or a tag: `key=value` (exact) or `key` (tag set).",
    )


class ResourceIn(Strict):
    type: ResourceTypeKey = Field(description=f"One of {TYPES_TEXT}.")
    name: Name
    tags: Tags = Field(default_factory=dict, description=_TAGS_HELP)


class ResourcePatch(Strict):
    name: Name | None = None
    tags: Tags | None = Field(None, description=f"Replaces every tag. {_TAGS_HELP}")


def _out(resource: Resource) -> ResourceOut:
    return ResourceOut(
        id=resource.pk,
        project=resource.project_id,
        type=resource.type,
        name=resource.name,
        tags=resource.tags,
        created_at=resource.created_at,
        updated_at=resource.updated_at,
    )


@router.get(
    "/projects/{project_id}/resources",
    response={200: ResourcePage, **error_responses(400, 401, 403, 404, 422)},
    operation_id="resources_list",
)
@api_requires_on_type("list", project_param="project_id", input_param="filters")
def resources_list(
    request: HttpRequest,
    project_id: uuid.UUID,
    filters: Query[ResourceQuery],
    paging: Query[PageQuery],
) -> ResourcePage:
    """The project's resources of one `type`, oldest first; `q` searches names and tags
    (`team=web`)."""
    project: Project = request.project  # type: ignore[attr-defined]
    queryset = resource_selectors.resources_of(project, type=filters.type, search=filters.q)
    items, following = page_of(queryset, paging)
    return ResourcePage(items=[_out(r) for r in items], next=following)


@router.post(
    "/projects/{project_id}/resources",
    response={201: ResourceOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="resources_create",
)
@api_requires_on_type("create", project_param="project_id", input_param="payload")
def resources_create(request: HttpRequest, project_id: uuid.UUID, payload: ResourceIn) -> Status:
    """Register a resource of the body's `type` in the project."""
    project: Project = request.project  # type: ignore[attr-defined]
    resource = resource_services.resource_create(
        project=project,
        type=payload.type,
        name=payload.name,
        tags=payload.tags,
        actor=acting_user(request),
        request=request,
    )
    return Status(201, _out(resource))


@router.get(
    "/resources/{resource_id}",
    response={200: ResourceOut, **error_responses(401, 403, 404)},
    operation_id="resources_read",
)
@api_requires_on_resource("read")
def resources_read(request: HttpRequest, resource_id: uuid.UUID) -> ResourceOut:
    """One resource."""
    return _out(request.resource)  # type: ignore[attr-defined]


@router.patch(
    "/resources/{resource_id}",
    response={200: ResourceOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="resources_update",
)
@api_requires_on_resource("update")
def resources_update(
    request: HttpRequest, resource_id: uuid.UUID, payload: ResourcePatch
) -> ResourceOut:
    """Rename a resource and/or replace its tags; absent fields keep their values."""
    resource = resource_services.resource_update(
        resource=request.resource,  # type: ignore[attr-defined]
        name=payload.name,
        tags=payload.tags,
        actor=acting_user(request),
        request=request,
    )
    return _out(resource)


@router.delete(
    "/resources/{resource_id}",
    response={204: None, **error_responses(401, 403, 404)},
    operation_id="resources_delete",
)
@api_requires_on_resource("delete")
def resources_delete(request: HttpRequest, resource_id: uuid.UUID) -> Status:
    """Delete a resource."""
    resource_services.resource_delete(
        resource=request.resource,  # type: ignore[attr-defined]
        actor=acting_user(request),
        request=request,
    )
    return Status(204, None)
