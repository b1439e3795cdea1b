"""API operations on projects: list (those the key's bearer may read), create, read,
update, delete. The same services and selectors as the console's pages; read, update and
delete are decided in the project named by the path, as the console decides them."""

from __future__ import annotations

import datetime
import uuid

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict, patched
from organizations.api.auth import acting_user
from organizations.models import Project
from organizations.selectors import projects as project_selectors
from organizations.services import projects as project_services
from policies.guards import api_requires

router = Router(tags=["Projects"])

READ = "projects:projects:read"
_NAME_MAX = Project._meta.get_field("name").max_length
_DESCRIPTION_MAX = Project._meta.get_field("description").max_length


class ProjectOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    is_default: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ProjectPage(Schema):
    items: list[ProjectOut]
    next: str | None = Field(description="Cursor of the next page; null on the last one.")


class ProjectIn(Strict):
    name: str = Field(max_length=_NAME_MAX)
    description: str = Field("", max_length=_DESCRIPTION_MAX)


class ProjectPatch(Strict):
    name: str | None = Field(None, max_length=_NAME_MAX)
    description: str | None = Field(None, max_length=_DESCRIPTION_MAX)


class ProjectDeleteIn(Strict):
    confirm_name: str = Field(
        max_length=200,
        description="The project's name, typed exactly: a client names what it deletes.",
    )


def _out(project: Project) -> ProjectOut:
    return ProjectOut.from_orm(project)


@router.get(
    "/projects",
    response={200: ProjectPage, **error_responses(400, 401, 403, 422)},
    operation_id="projects_list",
)
@api_requires("projects:projects:list")
def projects_list(request: HttpRequest, page: Query[PageQuery]) -> ProjectPage:
    """The projects the key's bearer may read (`projects:projects:read` in each), oldest
    first."""
    items, following = page_of(project_selectors.projects_allowing(request, [READ]), page)
    return ProjectPage(items=[_out(p) for p in items], next=following)


@router.post(
    "/projects",
    response={201: ProjectOut, **error_responses(400, 401, 403, 422)},
    operation_id="projects_create",
)
@api_requires("projects:projects:create")
def projects_create(request: HttpRequest, payload: ProjectIn) -> Status:
    """Create a project; names are unique in the organization, ignoring case."""
    project = project_services.project_create(
        organization=request.organization,  # type: ignore[attr-defined]
        name=payload.name,
        description=payload.description,
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(201, _out(project))


@router.get(
    "/projects/{project_id}",
    response={200: ProjectOut, **error_responses(401, 403, 404)},
    operation_id="projects_read",
)
@api_requires(READ, project_param="project_id")
def projects_read(request: HttpRequest, project_id: uuid.UUID) -> ProjectOut:
    """One project."""
    return _out(request.project)  # type: ignore[attr-defined]


@router.patch(
    "/projects/{project_id}",
    response={200: ProjectOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="projects_update",
)
@api_requires("projects:projects:update", project_param="project_id")
def projects_update(
    request: HttpRequest, project_id: uuid.UUID, payload: ProjectPatch
) -> ProjectOut:
    """Rename or describe a project; absent fields keep their values."""
    project: Project = request.project  # type: ignore[attr-defined]
    project = project_services.project_update(
        project=project,
        **patched(payload, project, "name", "description"),
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return _out(project)


@router.delete(
    "/projects/{project_id}",
    response={204: None, **error_responses(400, 401, 403, 404, 422)},
    operation_id="projects_delete",
)
@api_requires("projects:projects:delete", project_param="project_id")
def projects_delete(
    request: HttpRequest, project_id: uuid.UUID, payload: ProjectDeleteIn
) -> Status:
    """Delete a project (never the default one). The body must name it exactly
    (`confirm_name`), as the console's confirmation does, so a client cannot delete the
    wrong project by a mistyped id."""
    project_services.project_delete(
        project=request.project,  # type: ignore[attr-defined]
        confirm_name=payload.confirm_name,
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(204, None)
