"""API operations attaching a policy to, and detaching it from, a user, group or
application. Users are named by their account id, as `POST /authorize` names them."""

from __future__ import annotations

import uuid
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Status

from iamportal.api_errors import error_responses
from iamportal.api_schemas import Strict
from organizations.api.auth import acting_user
from organizations.models import Application, Group, Membership, Organization
from organizations.selectors.organizations import get_or_404, members_of
from policies.api.policies import PolicyOut, policy_out
from policies.guards import api_requires
from policies.lockout import api_refuses_self_lockout
from policies.selectors import policies as policy_selectors
from policies.services import attachments as attachment_services

router = Router(tags=["Policies"])

Kind = Literal["user", "group", "application"]


class AttachIn(Strict):
    type: Kind
    id: uuid.UUID = Field(description="A user's account id, a group's or an application's id.")


def principal_for(
    organization: Organization, kind: str, principal_id: uuid.UUID
) -> Membership | Group | Application:
    """A user (by account id), group or application of the organization, else 404."""
    if kind == "user":
        return get_or_404(members_of(organization), "No such principal.", user_id=principal_id)
    model = Group if kind == "group" else Application
    return get_or_404(
        model.objects.select_related("organization"),
        "No such principal.",
        organization=organization,
        pk=principal_id,
    )


@router.post(
    "/policies/{policy_id}/attachments",
    response={200: PolicyOut, 201: PolicyOut, **error_responses(400, 401, 403, 404, 409, 422)},
    operation_id="policies_attach",
)
@api_requires("iam:policies:attach")
@api_refuses_self_lockout
def policies_attach(
    request: HttpRequest, response: HttpResponse, policy_id: uuid.UUID, payload: AttachIn
) -> Status[PolicyOut]:
    """Attach the policy (custom or managed) to a principal: 201, or 200 when it already
    was. Refused (403 `delegation_refused`) when it grants what the key's bearer lacks."""
    organization = request.organization  # type: ignore[attr-defined]
    policy = policy_selectors.policy_for(organization=organization, policy_id=policy_id)
    principal = principal_for(organization, payload.type, payload.id)
    created = attachment_services.policy_attach(
        policy=policy, principal=principal, actor=acting_user(request), request=request
    )
    return Status(201 if created else 200, policy_out(request, policy, response))


@router.delete(
    "/policies/{policy_id}/attachments/{kind}/{principal_id}",
    response={200: PolicyOut, **error_responses(400, 401, 403, 404, 409, 422)},
    operation_id="policies_detach",
)
@api_requires("iam:policies:attach")
@api_refuses_self_lockout
def policies_detach(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    kind: Kind,
    principal_id: uuid.UUID,
) -> PolicyOut:
    """Detach the policy from a principal (no change when it was not attached)."""
    organization = request.organization  # type: ignore[attr-defined]
    policy = policy_selectors.policy_for(organization=organization, policy_id=policy_id)
    principal = principal_for(organization, kind, principal_id)
    attachment_services.policy_detach(
        policy=policy, principal=principal, actor=acting_user(request), request=request
    )
    return policy_out(request, policy, response)
