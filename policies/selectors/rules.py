"""Reads of rules: gathering and compiling a principal's rules, or a policy's."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

from django.db.models import Q, Subquery

from organizations.models import Application, Group, Membership
from policies.evaluator import CompiledRule, CompiledRuleSet, compile_rule
from policies.models import Policy, PolicyAttachment, Rule

# How a policy reaches a principal: the names of the groups it is attached to that the
# principal is in (sorted), and whether it is also attached to the principal itself.
Path = tuple[tuple[str, ...], bool]


def policy_paths_for(principal: Membership | Application) -> dict[object, Path]:
    """The policies attached to a membership or an application, directly or through its
    groups, each with its path (one query, whatever the size of the organization)."""
    field = "membership" if isinstance(principal, Membership) else "application"
    related = "members" if field == "membership" else "applications"
    group_ids = Group.objects.filter(**{related: principal}).values("pk")
    # Two halves in one UNION ALL (an attachment is either direct or a group's), so each
    # walks its own index: with OR, PostgreSQL scanned every attachment of every
    # organization (0.8 ms at 9,000 attachments, on every request).
    fields = ("policy_id", "group__name")
    direct_ones = PolicyAttachment.objects.filter(**{field: principal}).values_list(*fields)
    through_groups = PolicyAttachment.objects.filter(group__in=group_ids).values_list(*fields)
    attachments = direct_ones.order_by().union(through_groups.order_by(), all=True)
    direct: set[object] = set()
    through: dict[object, list[str]] = {}
    for policy_id, group_name in attachments:
        if group_name is None:
            direct.add(policy_id)
        else:
            through.setdefault(policy_id, []).append(group_name)
    return {
        policy_id: (tuple(sorted(through.get(policy_id, ()))), policy_id in direct)
        for policy_id in direct | through.keys()
    }


def compile_policies(
    organization_id: object, paths: Mapping[object, Path], *, guardrail: bool
) -> dict[object, list[CompiledRule]]:
    """The rules of the policies of `paths`, each compiled as held through its path, and,
    with `guardrail`, those of the organization's guardrail (one query). Keyed by policy
    id, in position order; a policy without rules is absent."""
    wanted = Q(policy_id__in=paths.keys())
    if guardrail:
        # A scalar subquery, so that PostgreSQL still finds the rules through their index.
        guardrail_id = Policy.objects.filter(
            kind=Policy.Kind.GUARDRAIL, organization_id=organization_id
        ).values("pk")[:1]
        wanted |= Q(policy_id=Subquery(guardrail_id))
    compiled: dict[object, list[CompiledRule]] = {}
    for rule in _compile_rows(wanted, paths=paths):
        compiled.setdefault(uuid.UUID(rule.policy_id), []).append(rule)
    return compiled


def composed(policies: Iterable[Sequence[CompiledRule]]) -> CompiledRuleSet:
    """One rule set of compiled policies, ordered as people read them: by policy name,
    then position."""
    ordered = sorted((rules for rules in policies if rules), key=_policy_order)
    return CompiledRuleSet(rule for rules in ordered for rule in rules)


def _policy_order(rules: Sequence[CompiledRule]) -> tuple[str, str]:
    return rules[0].policy_name, rules[0].policy_id


def compile_rules_for(principal: Membership | Application) -> CompiledRuleSet:
    """Every rule that applies to a membership or an application: the policies attached to
    it, to its groups, and the organization's guardrail. Two queries whatever the size of
    the organization: the attachments, then the rules with their policy, projects and
    resources. Uncached (policies.authz.rules_for caches, sharing compiled policies).

    Stored rules compile leniently (`strict=False`): a rule made invalid by a catalogue
    change degrades towards denial instead of breaking every page of the organization.
    """
    paths = policy_paths_for(principal)
    return composed(compile_policies(principal.organization_id, paths, guardrail=True).values())


def compile_policy_rules(policy_ids: Iterable[object]) -> list[CompiledRule]:
    """The rules of these policies, compiled as a principal would hold them directly (one
    query): what attaching them adds, or detaching them takes away."""
    ids = set(policy_ids)
    if not ids:
        return []
    return _compile_rows(Q(policy_id__in=ids), paths=dict.fromkeys(ids, _DIRECT))


def compile_stored_rule(rule: Rule) -> list[CompiledRule]:
    """One stored rule, compiled as its policy's holder sees it (what editing or removing
    it takes away)."""
    return _compile_rows(Q(pk=rule.pk), paths={rule.policy_id: _DIRECT})


_DIRECT: Path = ((), True)


def _compile_rows(wanted: Q, *, paths: Mapping[object, Path]) -> list[CompiledRule]:
    # Plain rows, one per (rule, project) or (rule, resource), rather than model instances
    # with prefetched projects: a related manager per rule cost most of a cold compile
    # (about 4x). A rule holds projects or resources, never both (the services clear the
    # other), so the two joins do not multiply. Sorted here rather than in SQL.
    rows = (
        Rule.objects.filter(wanted)
        .order_by()
        .values_list(
            "policy__name",
            "policy_id",
            "position",
            "pk",
            "policy__kind",
            "effect",
            "actions",
            "scope",
            "condition",
            "policy__version",
            "projects",
            "resources",
            "resources__type",
            "resources__project_id",
        )
    )
    rules: dict[object, tuple[tuple[object, ...], set[str], set[tuple[str, str, str]]]] = {}
    for *row, project_id, resource_id, resource_type, resource_project in rows:
        _, projects, resources = rules.setdefault(row[3], (tuple(row), set(), set()))
        if project_id is not None:
            projects.add(str(project_id))
        if resource_id is not None:
            resources.add((str(resource_id), resource_type, str(resource_project)))
    compiled: list[CompiledRule] = []
    index, previous = 0, None
    for row, projects, resources in sorted(rules.values(), key=lambda rule: rule[0][:3]):
        name, policy_id, _position, _pk, kind, effect, actions, scope, condition, version = row
        index = index + 1 if policy_id == previous else 1
        previous = policy_id
        is_guardrail = kind == Policy.Kind.GUARDRAIL
        groups, direct = paths.get(policy_id, _DIRECT)
        compiled.append(
            compile_rule(
                policy_id=str(policy_id),
                policy_name=name,
                rule_index=index,
                effect=effect,
                actions=actions,
                scope=scope,
                project_ids=sorted(projects),
                resources=sorted(resources),
                condition=condition,
                is_guardrail=is_guardrail,
                groups=groups,
                direct=is_guardrail or direct,
                strict=False,
                policy_version=version,
            )
        )
    return compiled
