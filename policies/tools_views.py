"""IAM tools: the action catalogue, the policy simulator and effective permissions.

Read-only pages. The simulator and the effective-permissions page compile the chosen
member's rules afresh (`compile_rules_for`), never through the per-request memo of the
signed-in user's own decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from organizations.models import Application, Membership, Organization
from organizations.selectors.applications import application_for
from organizations.selectors.organizations import member_for
from organizations.selectors.projects import projects_of
from policies import catalogue
from policies.authz import principal_of
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Principal,
    decide,
    describe_scope,
    effective_permissions,
)
from policies.guards import requires
from policies.selectors import compile_rules_for
from policies.tools_forms import DATETIME_LOCAL, SimulatorForm


@dataclass(frozen=True, slots=True)
class RuleRow:
    """A compiled rule with its scope in words, for display."""

    rule: CompiledRule
    scope: str

    @property
    def actions(self) -> list[str]:
        return sorted(self.rule.actions)


def _project_names(organization: Organization) -> dict[str, str]:
    return {str(pk): name for pk, name in projects_of(organization).values_list("pk", "name")}


def _rows(rules: Iterable[CompiledRule], project_names: Mapping[str, str]) -> list[RuleRow]:
    return [RuleRow(rule, describe_scope(rule.scope, project_names)) for rule in rules]


def _rules_of(subject: Membership | Application, principal: Principal) -> CompiledRuleSet:
    # Owners and inactive principals are decided before any rule is read.
    if principal.is_owner or not principal.is_active:
        return CompiledRuleSet.empty()
    return compile_rules_for(subject)


# ------------------------------------------------------------------------- catalogue


@cache
def _catalogue_listing() -> dict[str, Any]:
    """The catalogue arranged for display; it is immutable, so built once per process."""
    services = [
        (service, catalogue.actions_for_service(key)) for key, service in catalogue.SERVICES.items()
    ]
    permission_sets = [
        (
            permission_set,
            catalogue.permission_set_level(name),
            sorted(catalogue.permission_set_actions(name)),
        )
        for name, permission_set in catalogue.PERMISSION_SETS.items()
    ]
    return {"services": services, "permission_sets": permission_sets}


@requires("iam:policies:list")
@require_GET
def catalogue_view(request: HttpRequest, org_id: UUID) -> HttpResponse:
    return render(request, "policies/tools/catalogue.html", _catalogue_listing())


# ------------------------------------------------------------------------- simulator


@requires("iam:simulator:use")
@require_GET
def simulator(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Ask the evaluator about any member, action, project and request context.

    The form counts as submitted once it carries an action; before that, query
    parameters (`?principal=` from a member's page) only pre-fill it.
    """
    organization = request.organization
    context: dict[str, Any] = {}
    if "action" in request.GET:
        form = SimulatorForm(request.GET, organization=organization)
        if form.is_valid():
            context = _simulate(form, organization)
    else:
        initial = {"time": timezone.now().strftime(DATETIME_LOCAL), **request.GET.dict()}
        form = SimulatorForm(initial=initial, organization=organization)
    context["form"] = form
    # HTMX does not swap 4xx responses by default, so its errors come back with 200.
    status = 400 if form.is_bound and form.errors and not request.htmx else 200
    template = "policies/tools/simulator.html"
    if request.htmx:
        template += "#result"
    return render(request, template, context, status=status)


def _simulate(form: SimulatorForm, organization: Organization) -> dict[str, Any]:
    subject: Membership | Application = form.cleaned_data["principal"]
    project = form.cleaned_data["project"]
    facts = form.request_facts()
    principal = principal_of(subject)
    decision = decide(
        principal=principal,
        rules=_rules_of(subject, principal),
        action=form.cleaned_data["action"],
        project_id=str(project.pk) if project else None,
        request=facts,
    )
    project_names = _project_names(organization)
    deciding = decision.deciding_rule
    return {
        "decision": decision,
        "subject": subject,
        "principal": principal,
        "project": project,
        "facts": facts,
        "deciding": _rows([deciding], project_names)[0] if deciding else None,
        "matched": _rows(decision.matched_rules, project_names),
        "missing": decision.reason == "implicit_deny",
    }


# -------------------------------------------------------------- effective permissions


@requires("iam:users:read")
@require_GET
def effective_permissions_view(
    request: HttpRequest, org_id: UUID, membership_id: UUID
) -> HttpResponse:
    """Every action the member holds, where, and through which rule; plus the denies."""
    subject = member_for(organization=request.organization, membership_id=membership_id)
    return _effective_permissions(request, subject)


@requires("iam:applications:read")
@require_GET
def application_permissions_view(
    request: HttpRequest, org_id: UUID, application_id: UUID
) -> HttpResponse:
    """The same for an application: what its API keys may do."""
    subject = application_for(organization=request.organization, application_id=application_id)
    return _effective_permissions(request, subject)


def _effective_permissions(request: HttpRequest, subject: Membership | Application) -> HttpResponse:
    organization = request.organization
    principal = principal_of(subject)
    rules = _rules_of(subject, principal)
    project_names = _project_names(organization) if len(rules) else {}
    permissions = effective_permissions(principal, rules, project_names=project_names)
    by_service: dict[str, list[Any]] = {key: [] for key in catalogue.SERVICES}
    for permission in permissions:
        by_service[catalogue.ACTIONS[permission.action].service].append(permission)
    return render(
        request,
        "policies/tools/effective_permissions.html",
        {
            "subject": subject,
            "principal": principal,
            "services": [
                (catalogue.SERVICES[key], rows) for key, rows in by_service.items() if rows
            ],
            "denies": _rows((rule for rule in rules if rule.effect == "deny"), project_names),
        },
    )
