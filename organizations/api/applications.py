"""API operations on applications, the organization's non-human principals: list,
create, read, update, delete. The same services and selectors as the console's pages.
"""

from __future__ import annotations

import datetime
import uuid

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from iamportal.api_errors import error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict, patched
from organizations.api.auth import acting_user
from organizations.api.people import PrincipalTagsIn
from organizations.models import Application
from organizations.selectors import applications as application_selectors
from organizations.services import applications as application_services
from policies.guards import api_requires

router = Router(tags=["Applications"])


# --------------------------------------------------------------------------- schemas


class ApplicationOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ApplicationPage(Schema):
    items: list[ApplicationOut]
    next: str | None = Field(description="Cursor of the next page; null on the last one.")


_NAME_MAX = Application._meta.get_field("name").max_length
_DESCRIPTION_MAX = Application._meta.get_field("description").max_length


class ApplicationIn(Strict):
    name: str = Field(max_length=_NAME_MAX)
    description: str = Field("", max_length=_DESCRIPTION_MAX)


class ApplicationPatch(Strict):
    name: str | None = Field(None, max_length=_NAME_MAX)
    description: str | None = Field(None, max_length=_DESCRIPTION_MAX)


class ApplicationDeleteIn(Strict):
    confirm_name: str = Field(
        max_length=200, description="The application's name, typed exactly: its keys stop."
    )


def _out(application: Application) -> ApplicationOut:
    return ApplicationOut.from_orm(application)


def _application(request: HttpRequest, application_id: uuid.UUID) -> Application:
    return application_selectors.application_for(
        organization=request.organization,  # type: ignore[attr-defined]
        application_id=application_id,
    )


# --------------------------------------------------------------------------- operations


@router.get(
    "/applications",
    response={200: ApplicationPage, **error_responses(400, 401, 403)},
    operation_id="applications_list",
)
@api_requires("iam:applications:list")
def applications_list(request: HttpRequest, page: Query[PageQuery]) -> ApplicationPage:
    """The organization's applications, oldest first."""
    rows = application_selectors.applications_of(request.organization)  # type: ignore[attr-defined]
    items, following = page_of(rows, page)
    return ApplicationPage(items=[_out(a) for a in items], next=following)


@router.post(
    "/applications",
    response={201: ApplicationOut, **error_responses(400, 401, 403, 422)},
    operation_id="applications_create",
)
@api_requires("iam:applications:create")
def applications_create(request: HttpRequest, payload: ApplicationIn) -> Status:
    """Create an application; names are unique in the organization, ignoring case."""
    application = application_services.application_create(
        organization=request.organization,  # type: ignore[attr-defined]
        name=payload.name,
        description=payload.description,
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(201, _out(application))


@router.get(
    "/applications/{application_id}",
    response={200: ApplicationOut, **error_responses(401, 403, 404)},
    operation_id="applications_read",
)
@api_requires("iam:applications:read")
def applications_read(request: HttpRequest, application_id: uuid.UUID) -> ApplicationOut:
    """One application."""
    return _out(_application(request, application_id))


@router.patch(
    "/applications/{application_id}",
    response={200: ApplicationOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="applications_update",
)
@api_requires("iam:applications:update")
def applications_update(
    request: HttpRequest, application_id: uuid.UUID, payload: ApplicationPatch
) -> ApplicationOut:
    """Rename or describe an application; absent fields keep their values."""
    application = _application(request, application_id)
    application = application_services.application_update(
        application=application,
        **patched(payload, application, "name", "description"),
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return _out(application)


@router.put(
    "/applications/{application_id}/tags",
    response={200: ApplicationOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="applications_set_tags",
)
@api_requires("iam:applications:update")
def applications_set_tags(
    request: HttpRequest, application_id: uuid.UUID, payload: PrincipalTagsIn
) -> ApplicationOut:
    """Replace an application's tags. Never through its own key; the delegation ceiling
    applies (a rule whose condition reads `principal.tags` may start matching, so the
    caller must hold its actions)."""
    application = application_services.application_set_tags(
        application=_application(request, application_id),
        tags=payload.tags,
        actor=acting_user(request),
        request=request,
    )
    return _out(application)


@router.delete(
    "/applications/{application_id}",
    response={204: None, **error_responses(400, 401, 403, 404, 422)},
    operation_id="applications_delete",
)
@api_requires("iam:applications:delete")
def applications_delete(
    request: HttpRequest, application_id: uuid.UUID, payload: ApplicationDeleteIn
) -> Status:
    """Delete an application with its API keys, group memberships and attachments. The
    body names it (`confirm_name`, exactly) so a client cannot delete the wrong one."""
    application_services.application_delete(
        application=_application(request, application_id),
        confirm_name=payload.confirm_name,
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(204, None)
