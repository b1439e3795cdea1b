"""API operations on the resources platform services register in projects (#14): list
(one type at a time), create, read, update, delete.

Each resource type has its own actions (`compute:instances:create`, ...), and the type is
in the query, the body or the stored resource, so no static declaration can name the
action. Every operation therefore declares `projects:projects:read` in the project (of
the path, or of the resource), which also makes another organization's project or
resource a 404, and then decides the type's action in that project with the same
evaluator path (`authorize`), audited and answered 403 as the guard's denials are.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import StringConstraints

from iamportal.api_errors import APIError, error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_user
from organizations.models import Project, Resource
from organizations.selectors import resources as resource_selectors
from organizations.services import resources as resource_services
from organizations.tags import TAG_VALUE_MAX_LENGTH, TAGS_MAX
from policies.authz import authorize
from policies.catalogue import RESOURCE_TYPES
from policies.evaluator import Decision
from policies.guards import api_deny, api_operation, api_requires, decide_on_type, resource_in

router = Router(tags=["Resources"])

PROJECT_READ = "projects:projects:read"
ResourceTypeKey = Literal[tuple(RESOURCE_TYPES)]  # type: ignore[valid-type]
_TYPES = ", ".join(f"`{key}`" for key in RESOURCE_TYPES)
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
    # Optional in the schema so the project's guard answers first (403/404); required by
    # the operation, since each type has its own `list` permission.
    type: ResourceTypeKey | None = Field(None, description=f"Required: one of {_TYPES}.")
    q: str = Field(
        "",
        max_length=200,
        description="Part of a name, or a tag: `key=value` (exact) or `key` (tag set).",
    )


class ResourceIn(Strict):
    type: ResourceTypeKey = Field(description=f"One of {_TYPES}.")
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


def _require(request: HttpRequest, decision: Decision) -> None:
    """A denial is audited and answered 403, as the guard's are."""
    if not decision.allowed:
        raise api_deny(request, decision)


def _type_action_doc(verb: str, where: str) -> str:
    return (
        f"Also requires the `{verb}` action of the {where} type in its project: "
        + ", ".join(f"`{t.action(verb)}`" for t in RESOURCE_TYPES.values())
        + "."
    )


def _typed(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a guarded operation with the verb it also decides for the resource's type, so
    a role matrix can compute the type's action (as tests/urls.py does for the console)."""

    def decorator(guarded: Callable[..., Any]) -> Callable[..., Any]:
        guarded.iam_resource_verb = verb  # type: ignore[attr-defined]
        return guarded

    return decorator


def _on_resource(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`@api_requires(projects:projects:read)` in the project of the path's resource,
    then the resource type's `verb` action there; sets `request.resource`."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            resource = resource_in(request, kwargs["resource_id"])
            request.iam_action = PROJECT_READ  # type: ignore[attr-defined]
            _require(request, authorize(request, PROJECT_READ, project_id=resource.project_id))
            _require(request, decide_on_type(request, resource.type, verb, resource.project_id))
            return view(request, *args, **kwargs)

        note = _type_action_doc(verb, "resource's")
        view.__doc__ = f"{view.__doc__ or ''}\n\n{note}"
        api_operation(view, guarded, PROJECT_READ)
        # The project comes from the resource named by this path parameter.
        guarded.iam_project_param = "resource_id"  # type: ignore[attr-defined]
        return _typed(verb)(guarded)

    return decorator


@router.get(
    "/projects/{project_id}/resources",
    response={200: ResourcePage, **error_responses(400, 401, 403, 404, 422)},
    operation_id="resources_list",
)
@_typed("list")
@api_requires(PROJECT_READ, project_param="project_id")
def resources_list(
    request: HttpRequest,
    project_id: uuid.UUID,
    filters: Query[ResourceQuery],
    paging: Query[PageQuery],
) -> ResourcePage:
    """The project's resources of one `type` (required: each type has its own `list`
    permission), oldest first; `q` searches names and tags (`team=web`).

    Also requires the `list` action of the type in the project: `compute:instances:list`,
    `storage:buckets:list` or `dns:zones:list`."""
    project: Project = request.project  # type: ignore[attr-defined]
    if filters.type is None:
        raise APIError(
            422,
            "validation_error",
            "Name the resource type: each type has its own list permission.",
            {"type": [f"Required: one of {', '.join(RESOURCE_TYPES)}."]},
        )
    _require(request, decide_on_type(request, filters.type, "list", project.pk))
    queryset = resource_selectors.resources_of(project, type=filters.type, search=filters.q)
    items, following = page_of(queryset, paging)
    return ResourcePage(items=[_out(r) for r in items], next=following)


@router.post(
    "/projects/{project_id}/resources",
    response={201: ResourceOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="resources_create",
)
@_typed("create")
@api_requires(PROJECT_READ, project_param="project_id")
def resources_create(request: HttpRequest, project_id: uuid.UUID, payload: ResourceIn) -> Status:
    """Register a resource in the project.

    Also requires the `create` action of the body's type in the project:
    `compute:instances:create`, `storage:buckets:create` or `dns:zones:create`."""
    project: Project = request.project  # type: ignore[attr-defined]
    _require(request, decide_on_type(request, payload.type, "create", project.pk))
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
@_on_resource("read")
def resources_read(request: HttpRequest, resource_id: uuid.UUID) -> ResourceOut:
    """One resource."""
    return _out(request.resource)  # type: ignore[attr-defined]


@router.patch(
    "/resources/{resource_id}",
    response={200: ResourceOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="resources_update",
)
@_on_resource("update")
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
@_on_resource("delete")
def resources_delete(request: HttpRequest, resource_id: uuid.UUID) -> Status:
    """Delete a resource."""
    resource_services.resource_delete(
        resource=request.resource,  # type: ignore[attr-defined]
        actor=acting_user(request),
        request=request,
    )
    return Status(204, None)
