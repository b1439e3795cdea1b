"""Effective permissions: what a principal holds, one entry per action and granting rule,
with the denies that may take it back. Request facts are not known here, so conditions
are not run; the evaluator answers single requests, and `resource_decisions` asks it
about each action on one resource."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policies.catalogue import ACTIONS, ORGANIZATION, RESOURCE_TYPES
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Decision,
    Principal,
    RequestFacts,
    ResourceFacts,
    ResourceScope,
    Scope,
    decide,
    describe_scope,
)


@dataclass(frozen=True, slots=True)
class EffectivePermission:
    """One action a principal holds, where, and through which rule.

    `conditional` is True when the granting rule has a condition; `limited_by` names deny
    rules that may take it back (conditional, or covering only part of the scope).
    """

    action: str
    scope: str
    via: str
    conditional: bool = False
    condition: str = ""
    limited_by: tuple[str, ...] = ()


def _projects(scope: frozenset[str] | ResourceScope) -> frozenset[str]:
    """The projects a chosen-projects or chosen-resources scope reaches."""
    if isinstance(scope, ResourceScope):
        return frozenset(project for _kind, project in scope.by_id.values())
    return scope


def _covers(deny: Scope, allow: Scope) -> bool:
    if deny == allow:
        return True
    if deny == "all_projects":
        return allow != "organization"
    if isinstance(deny, ResourceScope):
        # Only a deny naming every resource an allow names takes the whole grant back.
        return isinstance(allow, ResourceScope) and allow.by_id.keys() <= deny.by_id.keys()
    if isinstance(deny, frozenset) and isinstance(allow, frozenset | ResourceScope):
        return _projects(allow) <= deny
    return False


def _overlaps(a: Scope, b: Scope) -> bool:
    if a == "organization" or b == "organization":
        return a == b
    if a == "all_projects" or b == "all_projects":
        return True
    if isinstance(a, ResourceScope) and isinstance(b, ResourceScope):
        return bool(a.by_id.keys() & b.by_id.keys())
    return bool(_projects(a) & _projects(b))  # type: ignore[arg-type]


def effective_permissions(
    principal: Principal,
    rules: CompiledRuleSet | Sequence[CompiledRule],
    *,
    project_names: Mapping[str, str] | None = None,
    resource_names: Mapping[str, str] | None = None,
) -> list[EffectivePermission]:
    """What `principal` may do, one entry per (action, granting rule), sorted by action.

    Grants wholly taken back by an unconditional deny are left out; partial or
    conditional denies are listed in `limited_by`. Owners hold every action; an inactive
    principal holds none. Request facts are not known here, so conditions are not run.
    """
    if not principal.is_active:
        return []
    if principal.is_owner:
        return [
            EffectivePermission(
                action=name,
                scope="organization" if action.level == ORGANIZATION else "all projects",
                via="owner",
            )
            for name, action in sorted(ACTIONS.items())
        ]
    ruleset = rules if isinstance(rules, CompiledRuleSet) else CompiledRuleSet(rules)
    found: list[EffectivePermission] = []
    for rule in ruleset:
        if rule.effect != "allow":
            continue
        for name in rule.actions:
            limited_by: list[str] = []
            denied = False
            for deny in ruleset.for_action(name):
                if deny.effect != "deny" or not _overlaps(deny.scope, rule.scope):
                    continue
                if deny.condition is None and _covers(deny.scope, rule.scope):
                    denied = True
                    break
                limited_by.append(deny.label)
            if denied:
                continue
            found.append(
                EffectivePermission(
                    action=name,
                    scope=describe_scope(rule.scope, project_names, resource_names),
                    via=rule.label,
                    conditional=rule.condition is not None,
                    condition=rule.condition_source,
                    limited_by=tuple(limited_by),
                )
            )
    found.sort(key=lambda permission: (permission.action, permission.via))
    return found


def resource_decisions(
    principal: Principal,
    rules: CompiledRuleSet,
    resource: ResourceFacts,
    facts: RequestFacts,
) -> list[Decision]:
    """The evaluator's decision on `resource` for each action of its type, in the
    catalogue's order; pure, so its cost does not depend on the database."""
    kind = RESOURCE_TYPES[resource.type]
    return [
        decide(
            principal=principal,
            rules=rules,
            action=action,
            project_id=resource.project_id,
            request=facts,
            resource=resource,
        )
        for action in kind.actions
    ]
