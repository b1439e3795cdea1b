"""Reads of projects, and which of them the request's member may act in.

Which projects a member may act in is decided by the evaluator, in a constant number of
queries whatever the number of projects.

The evaluator tells projects apart only by the ids its rules name: every project no rule
names is matched by the `all_projects` rules alone, so one decision answers for all of
them. Deciding the named projects one by one and one unnamed project for the rest gives
the exact set as a queryset (paginated and ordered by the database), after compiling
the member's rules once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import HttpRequest

from organizations.models import Organization, Project
from organizations.selectors.organizations import in_organization
from policies.authz import can, principal_of, rules_for, subject_of, viewing_as
from policies.catalogue import ACTIONS, PROJECT, Action
from policies.evaluator import CompiledRule, CompiledRuleSet, ResourceScope


def projects_of(organization: Organization) -> QuerySet[Project]:
    return Project.objects.filter(organization=organization)


def project_for(*, organization: Organization, project_id: object) -> Project:
    return in_organization(Project, organization, project_id)


def _rule_sets(request: HttpRequest) -> list[CompiledRuleSet]:
    """The compiled rules of whom the request acts as (a member, or an API key's bearer)
    and, while viewing the console as someone, theirs too: a decision is then both's, so
    projects either names are candidates. Owners and inactive principals have none (the
    evaluator decides them without rules)."""
    subjects = [subject_of(request)]
    viewing = viewing_as(request)
    if viewing is not None:
        subjects.append(viewing.target)
    sets = []
    for subject in subjects:
        principal = principal_of(subject)  # type: ignore[arg-type]
        if not principal.is_owner and principal.is_active:
            sets.append(rules_for(subject))  # type: ignore[arg-type]
    return sets


def member_rules(request: HttpRequest) -> list[CompiledRule]:
    """Every rule of `_rule_sets`."""
    return [rule for ruleset in _rule_sets(request) for rule in ruleset]


def projects_allowing(request: HttpRequest, actions: Iterable[str]) -> QuerySet[Project]:
    """The organization's projects where the member is allowed at least one of the
    project-level `actions`."""
    actions = tuple(actions)
    projects = projects_of(request.organization)  # type: ignore[attr-defined]
    # Owners, and grants with no deny in any project: every project.
    if any(can(request, action) for action in actions):
        return projects
    rules = [
        rule
        for ruleset in _rule_sets(request)
        for action in actions
        for rule in ruleset.for_action(action)
    ]
    named = {pid for rule in rules if isinstance(rule.scope, frozenset) for pid in rule.scope}
    allowed = {pid for pid in named if any(can(request, a, pid) for a in actions)}
    unnamed = None
    if any(rule.effect == "allow" and rule.scope == "all_projects" for rule in rules):
        unnamed = projects.exclude(pk__in=named).values_list("pk", flat=True).first()
    if unnamed is not None and any(can(request, a, unnamed) for a in actions):
        return projects.exclude(pk__in=named - allowed)
    return projects.filter(pk__in=allowed)


def project_actions_held(request: HttpRequest) -> list[str]:
    """The project-level actions some allow rule of the member grants, in catalogue
    order (an allow may still be taken back by a deny or a condition, project by project).
    An allow scoped to chosen resources grants nothing on a project as a whole."""
    held = {
        action
        for rule in member_rules(request)
        if rule.effect == "allow"
        and rule.scope != "organization"
        and not isinstance(rule.scope, ResourceScope)
        for action in rule.actions
    }
    return [name for name, action in ACTIONS.items() if action.level == PROJECT and name in held]


def actions_allowed_in(
    request: HttpRequest, project: Project, actions: Iterable[str]
) -> list[Action]:
    """Those of `actions` the member is allowed in `project`, as catalogue entries."""
    return [ACTIONS[name] for name in actions if can(request, name, project.pk)]
