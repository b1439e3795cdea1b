"""API operations on a policy's rules: add, update, move, remove.

The services compile each rule strictly, apply the delegation ceiling (403
`delegation_refused`) and the guardrail permission, bump the authorization version and
record the audit event. Writes accept the policy's `If-Match` (409 when stale) and answer
with the whole policy and its new `ETag`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Header, Router, Status

from iamportal.api_errors import error_responses
from organizations.api.auth import acting_user
from organizations.models import Organization, Project, Resource
from organizations.selectors.projects import project_for
from policies.api.policies import (
    IF_MATCH_DOC,
    PolicyOut,
    Strict,
    editable_policy_for,
    guarded_write,
    policy_out,
)
from policies.guards import api_requires
from policies.lockout import api_refuses_self_lockout
from policies.selectors import policies as policy_selectors
from policies.services import rules as rule_services

router = Router(tags=["Policies"])


class RuleIn(Strict):
    effect: Literal["allow", "deny"]
    actions: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Action names, wildcard patterns (`billing:*`) or permission-set names.",
    )
    scope: Literal["organization", "all_projects", "projects", "resources"]
    projects: list[uuid.UUID] = Field(
        default_factory=list, max_length=100, description="For the scope `projects`."
    )
    resources: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="For the scope `resources`: resource ids of the organization; the "
        "actions must be read, update or delete actions of their types.",
    )
    condition: str = Field("", max_length=4000, description="An optional CEL condition.")


class MoveIn(Strict):
    direction: Literal["up", "down"]


def projects_in(organization: Organization, ids: Sequence[uuid.UUID]) -> list[Project]:
    """The organization's projects named by `ids`; another organization's is 404."""
    return [project_for(organization=organization, project_id=pk) for pk in dict.fromkeys(ids)]


def resources_in(organization: Organization, ids: Sequence[uuid.UUID]) -> list[Resource]:
    """The organization's resources named by `ids` (one query); another organization's,
    or an unknown id, is 404."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {
        resource.pk: resource
        for resource in Resource.objects.filter(organization=organization, pk__in=wanted)
    }
    if len(found) != len(wanted):
        raise Http404("No such resource.")
    return [found[pk] for pk in wanted]


def rule_values(request: HttpRequest, payload: RuleIn) -> dict[str, object]:
    return {
        "effect": payload.effect,
        "actions": payload.actions,
        "scope": payload.scope,
        "projects": projects_in(request.organization, payload.projects),  # type: ignore[attr-defined]
        "resources": resources_in(request.organization, payload.resources),  # type: ignore[attr-defined]
        "condition": payload.condition,
    }


IfMatch = Header(None, alias="If-Match", description=IF_MATCH_DOC)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 422)


@router.post(
    "/policies/{policy_id}/rules",
    response={201: PolicyOut, **WRITE_ERRORS},
    operation_id="rules_add",
)
@api_requires("iam:policies:update")
@api_refuses_self_lockout
def rules_add(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    payload: RuleIn,
    if_match: str | None = IfMatch,
) -> Status[PolicyOut]:
    """Append a rule to a custom policy; answers the policy with its rules."""
    policy = editable_policy_for(request, policy_id)
    values = rule_values(request, payload)
    guarded_write(
        policy,
        if_match,
        lambda: rule_services.rule_add(
            policy=policy, **values, actor=acting_user(request), request=request
        ),
    )
    return Status(201, policy_out(request, policy, response))


@router.put(
    "/policies/{policy_id}/rules/{rule_id}",
    response={200: PolicyOut, **WRITE_ERRORS},
    operation_id="rules_update",
)
@api_requires("iam:policies:update")
@api_refuses_self_lockout
def rules_update(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    rule_id: uuid.UUID,
    payload: RuleIn,
    if_match: str | None = IfMatch,
) -> PolicyOut:
    """Change a rule in place (its position stays)."""
    policy = editable_policy_for(request, policy_id)
    rule = policy_selectors.rule_for(policy=policy, rule_id=rule_id)
    values = rule_values(request, payload)
    guarded_write(
        policy,
        if_match,
        lambda: rule_services.rule_update(
            rule=rule, **values, actor=acting_user(request), request=request
        ),
    )
    return policy_out(request, policy, response)


@router.post(
    "/policies/{policy_id}/rules/{rule_id}/move",
    response={200: PolicyOut, **WRITE_ERRORS},
    operation_id="rules_move",
)
@api_requires("iam:policies:update")
@api_refuses_self_lockout
def rules_move(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    rule_id: uuid.UUID,
    payload: MoveIn,
    if_match: str | None = IfMatch,
) -> PolicyOut:
    """Swap a rule with its neighbour above or below (the first up, the last down: no
    change)."""
    policy = editable_policy_for(request, policy_id)
    rule = policy_selectors.rule_for(policy=policy, rule_id=rule_id)
    guarded_write(
        policy,
        if_match,
        lambda: rule_services.rule_move(
            rule=rule, direction=payload.direction, actor=acting_user(request), request=request
        ),
    )
    return policy_out(request, policy, response)


@router.delete(
    "/policies/{policy_id}/rules/{rule_id}",
    response={200: PolicyOut, **WRITE_ERRORS},
    operation_id="rules_remove",
)
@api_requires("iam:policies:update")
@api_refuses_self_lockout
def rules_remove(
    request: HttpRequest,
    response: HttpResponse,
    policy_id: uuid.UUID,
    rule_id: uuid.UUID,
    if_match: str | None = IfMatch,
) -> PolicyOut:
    """Remove a rule; the rules below move up."""
    policy = editable_policy_for(request, policy_id)
    rule = policy_selectors.rule_for(policy=policy, rule_id=rule_id)
    guarded_write(
        policy,
        if_match,
        lambda: rule_services.rule_remove(rule=rule, actor=acting_user(request), request=request),
    )
    return policy_out(request, policy, response)
