"""`GET /who-can`: the principals an action is allowed to, as the console's who-can page
answers (`policies.selectors.who_can`), with the API's cursor paging. Guarded as that page
is, by the simulator's permission."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from iamportal.api_errors import APIError, error_responses
from iamportal.api_paging import PageQuery, decode_cursor, encode_cursor
from organizations.selectors.projects import project_for
from organizations.selectors.resources import resource_for
from policies import catalogue
from policies.authz import resource_facts
from policies.evaluator import CompiledRule
from policies.guards import api_requires
from policies.selectors.who_can import WhoCanRow, who_can

router = Router(tags=["Tools"])


class WhoCanQuery(Schema):
    action: str = Field(max_length=128, examples=["billing:invoices:read"])
    project: uuid.UUID | None = Field(
        None, description="For a project-level action; none asks about every project."
    )
    resource: uuid.UUID | None = Field(
        None,
        description="Ask about this resource (then in its project): one of its type's "
        "read, update or delete actions.",
    )
    q: str = Field(
        "", max_length=100, description="Part of an email, a name or an application's name."
    )
    status: Literal["", "owner", "allowed", "conditional", "blocked"] = ""


class WhoCanPrincipalOut(Schema):
    type: Literal["user", "application"]
    id: uuid.UUID = Field(description="A user's membership id, or the application's id.")
    label: str = Field(description="A user's email, or the application's name.")
    name: str = Field(description="A user's full name.")


class RuleRefOut(Schema):
    policy_id: uuid.UUID
    policy: str
    rule: int = Field(description="The rule's 1-based position in its policy.")
    effect: Literal["allow", "deny"]
    guardrail: bool
    condition: str
    text: str


class PathOut(RuleRefOut):
    direct: bool = Field(description="The policy is attached to the principal itself.")
    groups: list[str] = Field(description="The groups through which the policy reaches it.")


class WhoCanItemOut(Schema):
    principal: WhoCanPrincipalOut
    status: Literal["owner", "allowed", "conditional", "blocked"]
    paths: list[PathOut] = Field(description="The rules that grant it (none for an owner).")
    condition: str | None = Field(description='"allowed if …[, unless …]" when conditional.')
    unless: list[RuleRefOut] = Field(description="Conditional denies that may take it back.")
    blocked_by: RuleRefOut | None = Field(description="The deny or guardrail rule that blocks it.")


class CountsOut(Schema):
    owner: int
    allowed: int
    conditional: int
    blocked: int
    suspended: int = Field(description="Suspended principals a policy grants it: left out.")


class WhoCanOut(Schema):
    action: str
    project: uuid.UUID | None
    resource: uuid.UUID | None
    counts: CountsOut
    items: list[WhoCanItemOut]
    next: str | None


def _invalid(field: str, message: str) -> APIError:
    return APIError(422, "validation_error", message, {field: [message]})


def _rule_out(rule: CompiledRule) -> dict[str, Any]:
    return {
        "policy_id": rule.policy_id,
        "policy": rule.policy_name,
        "rule": rule.rule_index,
        "effect": rule.effect,
        "guardrail": rule.is_guardrail,
        "condition": rule.condition_source,
        "text": rule.label,
    }


def item_out(row: WhoCanRow) -> dict[str, Any]:
    """A row of the answer as the API shows it."""
    return {
        "principal": {"type": row.type, "id": row.id, "label": row.label, "name": row.name},
        "status": row.status,
        "paths": [
            {**_rule_out(step.rule), "direct": step.direct, "groups": list(step.groups)}
            for step in row.paths
        ],
        "condition": row.condition_text or None,
        "unless": [_rule_out(rule) for rule in row.unless],
        "blocked_by": _rule_out(row.blocked_by) if row.blocked_by is not None else None,
    }


@router.get(
    "/who-can",
    response={200: WhoCanOut, **error_responses(400, 401, 403, 404, 422)},
    operation_id="who_can",
)
@api_requires("iam:simulator:use")
def who_can_list(
    request: HttpRequest, query: Query[WhoCanQuery], paging: Query[PageQuery]
) -> dict[str, Any]:
    """Every user and application allowed this action (at organization level, in a
    project, in every project, or on a resource), sorted by label: owners, those a policy
    allows directly or through a group (with the rule), those allowed under a condition
    (shown, not evaluated), and those a policy grants it whom a deny or a guardrail
    blocks (with that rule). Suspended principals are left out and counted."""
    organization = request.organization  # type: ignore[attr-defined]
    action = catalogue.ACTIONS.get(query.action)
    if action is None:
        raise _invalid("action", f'"{query.action}" is not a known action.')
    project_id: object = None
    resource = None
    if query.project is not None:
        project_id = project_for(organization=organization, project_id=query.project).pk
    if query.resource is not None:
        registered = resource_for(organization=organization, resource_id=query.resource)
        if catalogue.PER_RESOURCE_ACTIONS.get(action.name) != registered.type:
            raise _invalid(
                "action",
                f"{action.name} is not a read, update or delete action "
                f"of a {registered.type} resource.",
            )
        if project_id is not None and project_id != registered.project_id:
            raise _invalid("project", "The resource is in another project.")
        resource = resource_facts(registered)
    elif project_id is not None and action.level == catalogue.ORGANIZATION:
        raise _invalid("project", f"{action.name} is an organization-level action.")
    answer = who_can(organization, action.name, project_id, resource)
    after = decode_cursor(paging.cursor) if paging.cursor else None
    rows, last = answer.after(after, paging.limit, search=query.q, status=query.status)
    return {
        "action": action.name,
        "project": resource.project_id if resource else project_id,
        "resource": query.resource,
        "counts": answer.counts,
        "items": [item_out(row) for row in rows],
        "next": encode_cursor(*last) if last else None,
    }
