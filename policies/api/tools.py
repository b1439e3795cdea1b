"""API operations of the IAM tools: the policy simulator and the effective permissions of
a user or an application.

The simulator decides with `policies.authz.decide_for`, the one path of the console's
guards and `POST /authorize`; effective permissions list what
`policies.effective.effective_permissions` finds in the rules the console's page reads
(`policies.selectors.tools.rules_of`). Both may be asked about a resource: a registered
one (type + id: it is decided with its own project and tags) or one not registered yet
(type + project + tags); the action must be one of its type's.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import ValidationError as PydanticValidationError

from iamportal.api_errors import APIError, error_responses
from iamportal.api_schemas import Strict
from organizations.models import Application, Membership, Organization
from organizations.selectors.applications import application_for
from organizations.selectors.organizations import get_or_404, members_of
from organizations.selectors.projects import project_for
from policies.api.authorize import (
    ContextIn,
    DecisionOut,
    PrincipalIn,
    ResourceIn,
    decision_out,
    facts_of,
)
from policies.authz import decide_for, principal_of, resource_facts
from policies.effective import effective_permissions, resource_decisions
from policies.evaluator import Decision, RequestFacts, ResourceFacts
from policies.guards import api_requires
from policies.selectors.authorize import principals_named
from policies.selectors.tools import (
    project_names,
    resource_in,
    resource_names,
    rules_of,
    wrong_action_for,
)

router = Router(tags=["Tools"])


class SimulateIn(Strict):
    principal: PrincipalIn
    action: str = Field(max_length=128, examples=["compute:instances:create"])
    project: uuid.UUID | None = Field(
        None, description="For a project-level action; none asks about every project."
    )
    resource: ResourceIn | None = Field(
        None, description="Ask about this resource (then in its project)."
    )
    context: ContextIn = Field(default_factory=ContextIn)


class ConditionReportOut(Schema):
    rule: str = Field(description="The rule whose condition took part.")
    condition: str
    text: str = Field(description="The condition on this request, in words.")


class SimulationOut(DecisionOut):
    condition_reports: list[ConditionReportOut] = Field(
        description="Conditions that took part in a denial, with the values they read."
    )


class ResourceQuery(Schema):
    """Effective permissions on one resource: `resource` (an id), or `resource_type`,
    `project` and `tags` (a JSON object) for one not registered yet."""

    resource: uuid.UUID | None = None
    resource_type: str | None = Field(None, max_length=32)
    project: uuid.UUID | None = None
    tags: str = Field("", max_length=20_000, description='A JSON object: {"team": "web"}.')


class ResourceOut(Schema):
    type: str
    id: str | None
    project: str
    tags: dict[str, str]


class ResourceDecisionOut(DecisionOut):
    action: str


class PermissionOut(Schema):
    action: str
    scope: str = Field(description="Where, in words: organization, all projects, project names.")
    via: str = Field(description="The granting rule, or `owner`.")
    conditional: bool
    condition: str
    limited_by: list[str] = Field(description="Deny rules that may take it back.")


class EffectiveOut(Schema):
    principal: PrincipalIn
    label: str
    is_owner: bool
    is_active: bool
    permissions: list[PermissionOut]
    resource: ResourceOut | None = Field(None, description="The resource asked about, if any.")
    decisions: list[ResourceDecisionOut] = Field(
        default_factory=list,
        description="With a resource: the decision on it of each action of its type.",
    )


def _invalid(field: str, message: str) -> APIError:
    return APIError(422, "validation_error", message, {field: [message]})


def resource_question(
    organization: Organization, spec: ResourceIn, action: str | None = None
) -> ResourceFacts:
    """The resource `spec` describes (its shape is checked by `ResourceIn`), within
    `organization` (404 for another's resource or project); 422 when `action` is not of
    its type."""
    if spec.id is not None:
        resource = resource_in(organization, spec.id)
        if resource is None or resource.type != spec.type:
            raise Http404(f"No such {spec.type} resource.")
        facts = resource_facts(resource)
    else:
        project_for(organization=organization, project_id=spec.project)
        facts = ResourceFacts.of(
            type=spec.type, id=None, project_id=spec.project, tags=spec.tags or {}
        )
    if action and (message := wrong_action_for(action, facts.type)):
        raise _invalid("action", message)
    return facts


def _simulation_out(decision: Decision) -> dict[str, Any]:
    reports = [
        {"rule": report.rule.label, "condition": report.source, "text": report.text}
        for report in decision.condition_reports
    ]
    return {**decision_out(decision), "condition_reports": reports}


@router.post(
    "/simulator",
    response={200: SimulationOut, **error_responses(401, 403, 404, 422)},
    operation_id="simulator",
)
@api_requires("iam:simulator:use")
def simulator(request: HttpRequest, payload: SimulateIn) -> dict[str, Any]:
    """Would this user or application be allowed this action (in this project, or on this
    resource) with this request context? The decision with the rules that matched, its
    explanation (naming the tags a matching condition read) and the conditions that took
    part in a denial."""
    organization = request.organization  # type: ignore[attr-defined]
    ref = (payload.principal.type, payload.principal.id)
    subject = principals_named(organization, [ref]).get(ref)
    if subject is None:
        raise Http404("No such principal.")
    if payload.project is not None:
        project_for(organization=organization, project_id=payload.project)
    resource = None
    if payload.resource is not None:
        resource = resource_question(organization, payload.resource, payload.action)
        if payload.project is not None and str(payload.project) != resource.project_id:
            raise _invalid("project", "The resource is in another project.")
    facts = facts_of(payload.context, timezone.now())
    decision = decide_for(subject, payload.action, payload.project, facts, resource)
    return _simulation_out(decision)


def _asked_resource(organization: Organization, query: ResourceQuery) -> ResourceFacts | None:
    if query.resource is None and not query.resource_type:
        if query.tags or query.project:
            raise _invalid("resource_type", "Name the resource's type (or its id).")
        return None
    tags: Any = {}
    if query.tags:
        try:
            tags = json.loads(query.tags)
        except ValueError:
            raise _invalid("tags", "Tags are a JSON object of key -> value strings.") from None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise _invalid("tags", "Tags are a JSON object of key -> value strings.")
    if query.resource is not None and not query.resource_type:
        found = resource_in(organization, query.resource)
        if found is None:
            raise Http404("No such resource.")
        query.resource_type = found.type
    try:
        spec = ResourceIn(
            type=query.resource_type or "",
            id=query.resource,
            project=query.project,
            tags=tags or None,
        )
    except PydanticValidationError as error:
        # The body schema's checks, answered for query parameters.
        problem = error.errors()[0]
        field = {"type": "resource_type"}.get(str(problem["loc"][0]), str(problem["loc"][0]))
        raise _invalid(field, problem["msg"].removeprefix("Value error, ")) from None
    return resource_question(organization, spec)


def _effective(
    request: HttpRequest, subject: Membership | Application, query: ResourceQuery
) -> EffectiveOut:
    organization = request.organization  # type: ignore[attr-defined]
    resource = _asked_resource(organization, query)
    principal = principal_of(subject)
    rules = rules_of(subject, principal)
    names = project_names(subject.organization, rules)
    decisions = []
    if resource is not None:
        # Only the resource's facts are known: conditions on the request see none.
        facts = RequestFacts(ip="", user_agent="", time=timezone.now(), mfa=False)
        decisions = [
            ResourceDecisionOut(action=decision.action, **decision_out(decision))
            for decision in resource_decisions(principal, rules, resource, facts)
        ]
    return EffectiveOut(
        principal=PrincipalIn(type=principal.type, id=uuid.UUID(principal.id)),
        label=principal.label,
        is_owner=principal.is_owner,
        is_active=principal.is_active,
        permissions=[
            PermissionOut(
                action=permission.action,
                scope=permission.scope,
                via=permission.via,
                conditional=permission.conditional,
                condition=permission.condition,
                limited_by=list(permission.limited_by),
            )
            for permission in effective_permissions(
                principal,
                rules,
                project_names=names,
                resource_names=resource_names(organization, rules),
            )
        ],
        resource=ResourceOut(
            type=resource.type, id=resource.id, project=resource.project_id, tags=resource.tags
        )
        if resource is not None
        else None,
        decisions=decisions,
    )


@router.get(
    "/effective-permissions/users/{user_id}",
    response={200: EffectiveOut, **error_responses(401, 403, 404, 422)},
    operation_id="effective_permissions_user",
)
@api_requires("iam:users:read")
def effective_permissions_user(
    request: HttpRequest, user_id: uuid.UUID, query: Query[ResourceQuery]
) -> EffectiveOut:
    """Every action the user (by account id) holds, where, and through which rule; with
    a resource, also the decision on it of each action of its type."""
    organization = request.organization  # type: ignore[attr-defined]
    membership = get_or_404(members_of(organization), "No such user.", user_id=user_id)
    return _effective(request, membership, query)


@router.get(
    "/effective-permissions/applications/{application_id}",
    response={200: EffectiveOut, **error_responses(401, 403, 404, 422)},
    operation_id="effective_permissions_application",
)
@api_requires("iam:applications:read")
def effective_permissions_application(
    request: HttpRequest, application_id: uuid.UUID, query: Query[ResourceQuery]
) -> EffectiveOut:
    """Every action the application (its API keys) holds, where, and through which rule;
    with a resource, also the decision on it of each action of its type."""
    organization = request.organization  # type: ignore[attr-defined]
    application = application_for(organization=organization, application_id=application_id)
    return _effective(request, application, query)
