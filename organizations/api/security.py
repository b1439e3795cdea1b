"""API operations on the organization's security settings: read, and update with the
console's own validation (its form, `organizations.forms.security.SecuritySettingsForm`)
and service."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Router, Schema

from iamportal.api_errors import error_responses
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_user
from organizations.forms.security import SecuritySettingsForm
from organizations.models import Organization
from organizations.services import security as security_services
from policies.guards import api_requires

router = Router(tags=["Security settings"])


class SecurityOut(Schema):
    mfa_required: bool
    mfa_grace_days: int
    login_failure_limit: int
    session_max_age_hours: int
    api_key_max_lifetime_days: int | None = Field(description="Null: keys may never expire.")
    disable_unused_after_days: int | None = Field(
        description="API keys and members (never owners) unused this many days are disabled "
        "or suspended by the daily sweep. Null: never."
    )
    invitation_domains: list[str] = Field(description="Empty: invitations to any address.")
    audit_retention_days: int


class SecurityPatch(Strict):
    """Absent fields keep their values; `api_key_max_lifetime_days: null` lifts the cap,
    `disable_unused_after_days: null` (7 to 3650 otherwise) turns the sweep off."""

    mfa_required: bool | None = None
    mfa_grace_days: int | None = None
    login_failure_limit: int | None = None
    session_max_age_hours: int | None = None
    api_key_max_lifetime_days: int | None = None
    disable_unused_after_days: int | None = None
    invitation_domains: list[str] | None = Field(None, max_length=200)
    audit_retention_days: int | None = None


def _out(organization: Organization) -> SecurityOut:
    return SecurityOut(
        **{name: getattr(organization, name) for name in security_services.SECURITY_FIELDS}
    )


def _form_data(values: dict[str, Any]) -> dict[str, Any]:
    """The settings as the console's form posts them."""
    data: dict[str, Any] = {}
    for name, value in values.items():
        if name == "invitation_domains":
            data[name] = "\n".join(value or [])
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else str(value)
    return data


@router.get(
    "/security",
    response={200: SecurityOut, **error_responses(401, 403)},
    operation_id="security_read",
)
@api_requires("organization:security:read")
def security_read(request: HttpRequest) -> SecurityOut:
    """The organization's security settings."""
    return _out(request.organization)  # type: ignore[attr-defined]


@router.patch(
    "/security",
    response={200: SecurityOut, **error_responses(400, 401, 403, 422)},
    operation_id="security_update",
)
@api_requires("organization:security:update")
def security_update(request: HttpRequest, payload: SecurityPatch) -> SecurityOut:
    """Change security settings, validated as the console's form validates them; each
    change is one audit event with the changed fields' before and after values."""
    organization: Organization = request.organization  # type: ignore[attr-defined]
    current = {name: getattr(organization, name) for name in security_services.SECURITY_FIELDS}
    values = {**current, **payload.model_dump(exclude_unset=True)}
    form = SecuritySettingsForm(_form_data(values), instance=organization)
    if not form.is_valid():
        organization.refresh_from_db()  # the bound form changed the instance in memory
        raise ValidationError(form.errors.as_data())
    security_services.organization_update_security(
        organization=organization,
        actor=acting_user(request),  # type: ignore[arg-type]
        request=request,
        **{name: form.cleaned_data[name] for name in security_services.SECURITY_FIELDS},
    )
    return _out(organization)
