"""Shrink to used (#16): the narrowed policy proposed for a user or application from what
it was allowed in the last N days (`PermissionUsage`), in place of the custom policies
attached to it directly.

The rule of the narrowing, which the page states:

- a used (action, project) pair is kept when an unconditional allow rule of one of those
  direct custom policies grants it: at organization level, in that whole project, or in
  every project (usage with no project, of a project-level action);
- pairs granted only under a condition or only on chosen resources are left out (the
  narrowed policy never grants more than was held, and conditions and resources are not
  guessed): the preview shows them as losses, and the page lists them;
- pairs granted through groups or managed policies are left out too: those policies are
  shared, so they stay attached and keep granting them;
- the deny rules of the replaced policies are carried over unchanged, so nothing they
  took back (from what groups or managed policies grant) comes back.

Reads a bounded amount whatever the organization's size: the principal's direct
attachments, their rules, its usage rows (at most the catalogue's actions times the
projects it used) and the names of the projects those name.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from django.utils import timezone

from organizations.models import Application, Membership, Project, Resource
from policies.catalogue import ACTIONS, ORGANIZATION, RESOURCE_TYPE_OF
from policies.evaluator import CompiledRule, ResourceScope
from policies.models import NO_PROJECT, PermissionUsage, Policy, Rule
from policies.selectors.attachments import policies_attached_to, policies_through_groups
from policies.selectors.rules import compile_policy_rules

Subject = Membership | Application


@dataclass(frozen=True)
class PlannedRule:
    """A rule of the narrowed policy, in `rule_add`'s terms."""

    effect: str
    actions: tuple[str, ...]
    scope: str
    projects: tuple[Project, ...] = ()
    resources: tuple[Resource, ...] = ()
    condition: str = ""

    @property
    def where(self) -> str:
        if self.scope == Rule.Scope.ORGANIZATION:
            return "the organization"
        if self.scope == Rule.Scope.ALL_PROJECTS:
            return "every project"
        if self.scope == Rule.Scope.PROJECTS:
            names = ", ".join(sorted(project.name for project in self.projects))
            return f"project{'s' if len(self.projects) != 1 else ''} {names}"
        names = ", ".join(sorted(resource.name for resource in self.resources))
        return f"resource{'s' if len(self.resources) != 1 else ''} {names}"


@dataclass(frozen=True)
class LeftOut:
    """A used pair the narrowed policy does not grant, and why."""

    action: str
    where: str
    reason: str


@dataclass
class ShrinkPlan:
    subject: Subject
    days: int
    replaced: list[Policy]  # the direct custom policies the narrowed one replaces
    kept_direct: list[str]  # names of directly attached managed policies (not narrowed)
    through_groups: list[tuple[str, str]]  # (policy name, group name): not narrowed
    rules: list[PlannedRule] = field(default_factory=list)  # allows first, then denies
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def grants(self) -> list[PlannedRule]:
        return [rule for rule in self.rules if rule.effect == Rule.Effect.ALLOW]

    @property
    def proposes(self) -> bool:
        """Anything used to keep: with nothing, no (empty or deny-only) policy is offered."""
        return bool(self.grants)


def _reason(rules: list[CompiledRule], action: str, level: str, project: str | None) -> str:
    allows = [rule for rule in rules if rule.effect == "allow" and action in rule.actions]
    if any(rule.scope_matches(level, project) for rule in allows):
        return "granted only under a condition"
    kind = RESOURCE_TYPE_OF.get(action, "")
    if project is not None and any(
        isinstance(rule.scope, ResourceScope) and rule.scope.holds_in(project, kind)
        for rule in allows
    ):
        return "granted only on chosen resources"
    return "not from its own custom policies (a group's or a managed policy, which stay, or gone)"


def _grants(rules: list[CompiledRule], action: str, level: str, project: str | None) -> bool:
    return any(
        rule.effect == "allow"
        and rule.condition is None
        and action in rule.actions
        and rule.scope_matches(level, project)
        for rule in rules
    )


def shrink_plan(*, subject: Subject, days: int, now: dt.datetime | None = None) -> ShrinkPlan:
    """What shrinking `subject` to what it used in the last `days` days would save (see
    the module's docstring for the rule)."""
    attachments = policies_attached_to(subject)
    replaced = [a.policy for a in attachments if a.policy.kind == Policy.Kind.CUSTOM]
    plan = ShrinkPlan(
        subject=subject,
        days=days,
        replaced=replaced,
        kept_direct=[a.policy.name for a in attachments if a.policy.kind != Policy.Kind.CUSTOM],
        through_groups=policies_through_groups(subject),
    )
    rules = compile_policy_rules([policy.pk for policy in replaced])
    since = (now or timezone.now()) - dt.timedelta(days=days)
    if isinstance(subject, Membership):
        kind, ident = "user", subject.user_id
    else:
        kind, ident = "application", subject.pk
    used = PermissionUsage.objects.filter(
        organization_id=subject.organization_id,
        principal_type=kind,
        principal_id=ident,
        last_allowed_at__gte=since,
    ).values_list("action", "project_id")
    organization_actions: set[str] = set()
    every_project: set[str] = set()
    in_projects: dict[str, set[UUID]] = defaultdict(set)
    missed: list[tuple[str, UUID | None, str]] = []
    for action, project_id in used:
        known = ACTIONS.get(action)
        if known is None:
            continue  # left the catalogue since: nothing to grant
        project = None if project_id == NO_PROJECT else project_id
        if known.level == ORGANIZATION and project is not None:
            continue
        place = str(project) if project is not None else None
        if not _grants(rules, action, known.level, place):
            missed.append((action, project, _reason(rules, action, known.level, place)))
        elif known.level == ORGANIZATION:
            organization_actions.add(action)
        elif project is None:
            every_project.add(action)
        else:
            in_projects[action].add(project)
    wanted = {pk for pks in in_projects.values() for pk in pks}
    wanted.update(project for _, project, _ in missed if project is not None)
    projects = Project.objects.filter(organization_id=subject.organization_id, pk__in=wanted)
    names = {project.pk: project for project in projects} if wanted else {}
    if organization_actions:
        plan.rules.append(
            PlannedRule(Rule.Effect.ALLOW, tuple(sorted(organization_actions)), "organization")
        )
    if every_project:
        plan.rules.append(
            PlannedRule(Rule.Effect.ALLOW, tuple(sorted(every_project)), "all_projects")
        )
    # Actions used in the same projects share a rule; deleted projects are dropped.
    by_places: dict[frozenset[UUID], list[str]] = defaultdict(list)
    for action, pks in in_projects.items():
        if places := frozenset(pk for pk in pks if pk in names):
            by_places[places].append(action)
    for actions, places in sorted((sorted(a), p) for p, a in by_places.items()):
        chosen = tuple(sorted((names[pk] for pk in places), key=lambda p: p.name.lower()))
        plan.rules.append(PlannedRule(Rule.Effect.ALLOW, tuple(actions), "projects", chosen))
    plan.rules += _carried_denies(replaced)
    left_out = [
        LeftOut(action, _where(action, project, names), reason)
        for action, project, reason in missed
        if project is None or project in names
    ]
    plan.left_out = sorted(left_out, key=lambda left: (left.action, left.where))
    return plan


def _where(action: str, project: UUID | None, names: dict[UUID, Project]) -> str:
    if project is not None:
        return f"in {names[project].name}"
    return "" if ACTIONS[action].level == ORGANIZATION else "in every project"


def _carried_denies(replaced: list[Policy]) -> list[PlannedRule]:
    stored = (
        Rule.objects.filter(policy__in=replaced, effect=Rule.Effect.DENY)
        .order_by("policy__name", "position")
        .prefetch_related("projects", "resources")
    )
    return [
        PlannedRule(
            rule.effect,
            tuple(rule.actions),
            rule.scope,
            tuple(rule.projects.all()),
            tuple(rule.resources.all()),
            rule.condition,
        )
        for rule in (stored if replaced else ())
    ]
