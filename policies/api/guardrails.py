"""API operations on the organization's guardrails: deny rules binding everyone but
owners. Only owners and holders of `iam:guardrails:update` (granted by name only) add
to them."""

from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from iamportal.api_errors import error_responses
from organizations.api.auth import acting_user
from policies.api.policies import RuleOut, rule_out
from policies.api.rules import RuleIn, rule_values
from policies.catalogue import GUARDRAIL_EDIT
from policies.guards import api_requires
from policies.lockout import api_refuses_self_lockout
from policies.selectors import policies as policy_selectors
from policies.services import guardrails as guardrail_services

router = Router(tags=["Guardrails"])


class GuardrailsOut(Schema):
    id: uuid.UUID | None = Field(description="The guardrail policy; null before its first rule.")
    rules: list[RuleOut]


def _guardrails_out(request: HttpRequest) -> GuardrailsOut:
    policy = policy_selectors.guardrail_of(request.organization)  # type: ignore[attr-defined]
    return GuardrailsOut(
        id=policy.pk if policy else None,
        rules=[rule_out(rule) for rule in policy_selectors.ordered_rules(policy)],
    )


@router.get(
    "/guardrails",
    response={200: GuardrailsOut, **error_responses(401, 403)},
    operation_id="guardrails_read",
)
@api_requires("iam:policies:read")
def guardrails_read(request: HttpRequest) -> GuardrailsOut:
    """The organization's guardrail rules, in order."""
    return _guardrails_out(request)


@router.post(
    "/guardrails/rules",
    response={201: GuardrailsOut, **error_responses(400, 401, 403, 404, 409, 422)},
    operation_id="guardrails_rule_add",
)
@api_requires(GUARDRAIL_EDIT)
@api_refuses_self_lockout
def guardrails_rule_add(request: HttpRequest, payload: RuleIn) -> Status[GuardrailsOut]:
    """Add a rule to the guardrails (created with their first rule)."""
    guardrail_services.guardrail_rule_add(
        organization=request.organization,  # type: ignore[attr-defined]
        **rule_values(request, payload),
        actor=acting_user(request),
        request=request,
    )
    return Status(201, _guardrails_out(request))
