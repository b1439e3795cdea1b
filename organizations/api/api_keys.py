"""API operations about API keys: the calling key's identity (`GET /me`), and the
organization's keys: list (`mine`, as the console's filter), create for yourself or an
application (the token shown once), enable a disabled one again (with
iam:api-keys:delete, as in the console), delete (your own, or any with
iam:api-keys:delete)."""

from __future__ import annotations

import datetime
import uuid
from functools import wraps
from typing import Any, Literal

from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema, Status

from iamportal.api_errors import APIError, error_responses
from iamportal.api_paging import PageQuery, page_of
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_user
from organizations.models import APIKey, Membership
from organizations.selectors import api_keys as api_key_selectors
from organizations.selectors.projects import project_for
from organizations.services import api_keys as api_key_services
from policies.authz import authorize_on_key, principal_of
from policies.guards import api_any_key, api_deny, api_operation, api_requires
from policies.selectors.authorize import principals_named

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


# ------------------------------------------------------------------ the organization's keys


class BearerOut(Schema):
    type: Literal["user", "application"]
    id: uuid.UUID = Field(description="A user's account id, or an application's id.")
    label: str


class APIKeyOut(Schema):
    id: uuid.UUID
    access_key: str
    bearer: BearerOut
    description: str
    default_project: uuid.UUID | None
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    last_used_ip: str | None
    disabled_at: datetime.datetime | None = Field(
        description="When the key was disabled (unused for the organization's "
        "`disable_unused_after_days`): it is refused until enabled again. Null: enabled."
    )
    disabled_reason: str = Field(description="Why it was disabled; empty when enabled.")


class APIKeyPage(Schema):
    items: list[APIKeyOut]
    next: str | None = Field(description="Cursor of the next page; null on the last one.")


class APIKeyListQuery(PageQuery):
    mine: bool = Field(False, description="Only the calling key's bearer's keys.")


class BearerIn(Strict):
    type: Literal["user", "application"]
    id: uuid.UUID


class APIKeyIn(Strict):
    bearer: BearerIn | None = Field(
        None,
        description="Yourself when absent. Nobody creates a key for another person; an "
        "application's key is created by a person (a user's key).",
    )
    description: str = Field("", max_length=APIKey._meta.get_field("description").max_length)
    expires_on: datetime.date | None = Field(
        None, description="The key stops working at 00:00 UTC that day; never when absent."
    )
    default_project: uuid.UUID | None = None


class APIKeyCreatedOut(APIKeyOut):
    token: str = Field(
        description="`<access_key>.<secret>`, to present as `Authorization: Bearer <token>`. "
        "Shown once: only its digest is stored."
    )


def _key_out(api_key: APIKey, **more: Any) -> dict[str, Any]:
    bearer = principal_of(
        api_key.bearer_membership if api_key.bearer_membership_id else api_key.bearer_application
    )
    return {
        "id": api_key.pk,
        "access_key": api_key.access_key,
        "bearer": BearerOut(type=bearer.type, id=bearer.id, label=bearer.label),
        "description": api_key.description,
        "default_project": api_key.default_project_id,
        "created_at": api_key.created_at,
        "expires_at": api_key.expires_at,
        "last_used_at": api_key.last_used_at,
        "last_used_ip": api_key.last_used_ip,
        "disabled_at": api_key.disabled_at,
        "disabled_reason": api_key.disabled_reason,
        **more,
    }


@router.get(
    "/api-keys",
    response={200: APIKeyPage, **error_responses(400, 401, 403, 422)},
    operation_id="api_keys_list",
)
@api_requires("iam:api-keys:list")
def api_keys_list(request: HttpRequest, query: Query[APIKeyListQuery]) -> APIKeyPage:
    """The organization's keys, oldest first; with `mine=true` those of the calling key's
    bearer (the console's "mine" filter)."""
    principal = request.principal  # type: ignore[attr-defined]
    own = isinstance(principal, Membership)
    keys = api_key_selectors.api_keys_of(
        organization=request.organization,  # type: ignore[attr-defined]
        membership=principal if query.mine and own else None,
        application=principal if query.mine and not own else None,
    )
    items, following = page_of(keys, query)
    return APIKeyPage(items=[APIKeyOut(**_key_out(k)) for k in items], next=following)


@router.post(
    "/api-keys",
    response={201: APIKeyCreatedOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="api_keys_create",
)
@api_requires("iam:api-keys:create")
def api_keys_create(request: HttpRequest, payload: APIKeyIn) -> Status:
    """Create a key for yourself or for an application; the response carries its token,
    the only time it is shown. A bearer or project of another organization is a 404."""
    organization = request.organization  # type: ignore[attr-defined]
    creator = getattr(request, "membership", None)
    if creator is None:
        # The service takes a person as the creator (organizations.services.api_keys).
        raise APIError(
            403,
            "user_key_required",
            "API keys are created by a person: call this with a user's API key.",
        )
    bearer: Any = creator
    if payload.bearer is not None:
        ref = (payload.bearer.type, payload.bearer.id)
        found = principals_named(organization, [ref])
        if ref not in found:
            raise Http404
        bearer = found[ref]
    default_project = None
    if payload.default_project is not None:
        default_project = project_for(organization=organization, project_id=payload.default_project)
    created = api_key_services.api_key_create(
        organization=organization,
        creator=creator,
        bearer=bearer,
        description=payload.description,
        expires_on=payload.expires_on,
        default_project=default_project,
        request=request,
    )
    token = api_key_services.api_key_token(
        access_key=created.api_key.access_key, secret=created.secret
    )
    return Status(201, APIKeyCreatedOut(**_key_out(created.api_key, token=token)))


@router.post(
    "/api-keys/{api_key_id}/enable",
    response={200: APIKeyOut, **error_responses(401, 403, 404)},
    operation_id="api_keys_enable",
)
@api_requires("iam:api-keys:delete")
def api_keys_enable(request: HttpRequest, api_key_id: uuid.UUID) -> APIKeyOut:
    """Let a disabled key work again; an enabled key is answered as it is. The key then
    holds its bearer's permissions: the caller must hold them too (403
    `delegation_refused` otherwise)."""
    api_key = api_key_selectors.api_key_for(
        organization=request.organization,  # type: ignore[attr-defined]
        api_key_id=api_key_id,
    )
    api_key_services.api_key_enable(api_key=api_key, actor=acting_user(request), request=request)
    api_key.refresh_from_db()
    return APIKeyOut(**_key_out(api_key))


def _bearer_or_requires(action: str) -> Any:
    """The console's rule for one key (`policies.authz.authorize_on_key`): its bearer, or
    `action`."""

    def decorator(view: Any) -> Any:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, api_key_id: uuid.UUID, **kwargs: Any) -> Any:
            api_key = api_key_selectors.api_key_for(
                organization=request.organization,  # type: ignore[attr-defined]
                api_key_id=api_key_id,
            )
            if (denied := authorize_on_key(request, api_key, action)) is not None:
                raise api_deny(request, denied)
            request.target_api_key = api_key  # type: ignore[attr-defined]
            return view(request, *args, api_key_id=api_key_id, **kwargs)

        api_operation(view, guarded, action)
        guarded.__doc__ = f"{guarded.__doc__} Its bearer may always delete its own keys."
        return guarded

    return decorator


@router.delete(
    "/api-keys/{api_key_id}",
    response={204: None, **error_responses(401, 403, 404)},
    operation_id="api_keys_delete",
)
@_bearer_or_requires("iam:api-keys:delete")
def api_keys_delete(request: HttpRequest, api_key_id: uuid.UUID) -> Status:
    """Revoke a key: it stops working at once (the calling key may revoke itself)."""
    api_key_services.api_key_delete(
        api_key=request.target_api_key,  # type: ignore[attr-defined]
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
    )
    return Status(204, None)
