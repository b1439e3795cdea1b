"""API operations of the IAM tools: the policy simulator and the effective permissions of
a user or an application.

The simulator decides with `policies.authz.decide_for`, the one path of the console's
guards and `POST /authorize`; effective permissions list what
`policies.effective.effective_permissions` finds in the rules the console's page reads
(`policies.selectors.tools.rules_of`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema

from iamportal.api_errors import error_responses
from iamportal.api_schemas import Strict
from organizations.models import Application, Membership
from organizations.selectors.applications import application_for
from organizations.selectors.organizations import get_or_404, members_of
from organizations.selectors.projects import project_for, projects_of
from policies.api.authorize import ContextIn, DecisionOut, PrincipalIn, decision_out, facts_of
from policies.authz import decide_for, principal_of
from policies.effective import effective_permissions
from policies.guards import api_requires
from policies.selectors.authorize import principals_named
from policies.selectors.tools import rules_of

router = Router(tags=["Tools"])


class SimulateIn(Strict):
    principal: PrincipalIn
    action: str = Field(max_length=128, examples=["compute:instances:create"])
    project: uuid.UUID | None = Field(
        None, description="For a project-level action; none asks about every project."
    )
    context: ContextIn = Field(default_factory=ContextIn)


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


@router.post(
    "/simulator",
    response={200: DecisionOut, **error_responses(401, 403, 404, 422)},
    operation_id="simulator",
)
@api_requires("iam:simulator:use")
def simulator(request: HttpRequest, payload: SimulateIn) -> dict[str, Any]:
    """Would this user or application be allowed this action (in this project) with this
    request context? The decision with the rules that matched and its explanation."""
    organization = request.organization  # type: ignore[attr-defined]
    ref = (payload.principal.type, payload.principal.id)
    subject = principals_named(organization, [ref]).get(ref)
    if subject is None:
        raise Http404("No such principal.")
    if payload.project is not None:
        project_for(organization=organization, project_id=payload.project)
    facts = facts_of(payload.context, timezone.now())
    return decision_out(decide_for(subject, payload.action, payload.project, facts))


def _effective(request: HttpRequest, subject: Membership | Application) -> EffectiveOut:
    principal = principal_of(subject)
    rules = rules_of(subject, principal)
    names = (
        {str(pk): name for pk, name in projects_of(subject.organization).values_list("pk", "name")}
        if len(rules)
        else {}
    )
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
            for permission in effective_permissions(principal, rules, project_names=names)
        ],
    )


@router.get(
    "/effective-permissions/users/{user_id}",
    response={200: EffectiveOut, **error_responses(401, 403, 404, 422)},
    operation_id="effective_permissions_user",
)
@api_requires("iam:users:read")
def effective_permissions_user(request: HttpRequest, user_id: uuid.UUID) -> EffectiveOut:
    """Every action the user (by account id) holds, where, and through which rule."""
    organization = request.organization  # type: ignore[attr-defined]
    membership = get_or_404(members_of(organization), "No such user.", user_id=user_id)
    return _effective(request, membership)


@router.get(
    "/effective-permissions/applications/{application_id}",
    response={200: EffectiveOut, **error_responses(401, 403, 404, 422)},
    operation_id="effective_permissions_application",
)
@api_requires("iam:applications:read")
def effective_permissions_application(
    request: HttpRequest, application_id: uuid.UUID
) -> EffectiveOut:
    """Every action the application (its API keys) holds, where, and through which rule."""
    organization = request.organization  # type: ignore[attr-defined]
    application = application_for(organization=organization, application_id=application_id)
    return _effective(request, application)
