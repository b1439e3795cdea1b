"""The one decision function: may this principal do this action here, and why.

Pure: compiled rules and request facts in, a `Decision` out; no database, no Django.
Gathering a principal's rules (attached policies, groups, guardrails) and caching the
compiled `CompiledRuleSet` by authorization version sit beside it, in Django code.

Semantics, in order:

1. an action missing from the catalogue is denied (`unknown_action`), owners included,
   so a typo in a guard never turns into a silent allow; so is, asked about a resource,
   an action not of that resource's type (`implicit_deny`, saying so), never an error;
2. an inactive (suspended or removed) principal is denied (`inactive`), owner or not;
3. an owner is allowed (`owner`);
4. a rule matches when the action is among its actions, its scope matches and its
   condition is true. Scope: an organization-level action is matched by organization
   rules, and only when no project is given; a project-level action with a project is
   matched by `all_projects` rules and by rules listing that project; a project-level
   action with no project ("in every project") is matched by `all_projects` rules and by
   deny rules listing any project: an allow must cover every project, and a deny in one
   project means the action is not allowed in every project.
   With a resource (`ResourceFacts`: the question is about that resource, in its
   project): organization rules never match, `all_projects` rules match, chosen-projects
   rules match when the resource's project is chosen, and chosen-resources rules match
   when they name the resource (for an action of its type). Without a resource, a
   chosen-resources allow never matches (it grants nothing on the project as a whole),
   and a chosen-resources deny matches when the project holds one of its resources of
   the action's type, or when the question is about every project (as chosen-projects
   denies do: the action is not allowed on every resource there).
   Conditions may read `resource.type`, `.id`, `.project`, `.tags` and `principal.tags`;
   reading `resource.*` in a question about no resource is a run-time error (step 5);
5. a condition that fails at run time fails closed: an allow rule does not match, a deny
   rule does (the error is kept in the decision);
6. any matching deny → deny (`explicit_deny`); else any matching allow → allow
   (`explicit_allow`); else deny (`implicit_deny`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

from policies.catalogue import (
    ACTIONS,
    ORGANIZATION,
    PER_RESOURCE_ACTIONS,
    RESOURCE_TYPE_OF,
    RESOURCE_TYPES,
    SCOPES,
    ActionScopeError,
    CatalogueError,
    ManagedPolicy,
    expand_pattern,
    expand_rule_actions,
)
from policies.conditions.compiler import (
    CompiledCondition,
    ConditionContext,
    ConditionError,
    broken_condition,
    compile_condition,
)
from policies.conditions.facts import NO_TAGS, ResourceFacts, frozen_tags, tags_hash
from policies.conditions.functions import LAZY_VARIABLES
from policies.explain import ConditionReport, report_condition, tag_reads

__all__ = [
    "CompiledRule",
    "CompiledRuleSet",
    "Decision",
    "Principal",
    "RequestFacts",
    "ResourceFacts",
    "ResourceScope",
    "RuleError",
    "compile_managed_policy",
    "compile_rule",
    "decide",
    "describe_scope",
]

Effect = Literal["allow", "deny"]
Reason = Literal[
    "owner", "explicit_allow", "explicit_deny", "implicit_deny", "inactive", "unknown_action"
]


class RuleError(ValueError):
    """A rule is malformed (effect, scope, projects); the message is for the editor."""


# ---------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks. `is_active` is False for a suspended or removed principal."""

    type: Literal["user", "application"]
    id: str
    is_owner: bool = False
    is_active: bool = True
    label: str = ""
    # The principal's attributes (team, department…), `principal.tags` in conditions.
    tags: Mapping[str, str] = field(default_factory=lambda: NO_TAGS)

    def __post_init__(self) -> None:
        if self.type not in ("user", "application"):
            raise ValueError(f"principal type must be user or application, not {self.type!r}")
        object.__setattr__(self, "tags", frozen_tags(self.tags))

    def __hash__(self) -> int:
        return hash((self.type, self.id, self.is_owner, self.is_active, self.label)) ^ tags_hash(
            self.tags
        )


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What conditions may know of the request. `time` must be timezone-aware."""

    ip: str
    user_agent: str
    time: dt.datetime
    mfa: bool = False

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("RequestFacts.time must be timezone-aware")


# ---------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """The scope of a chosen-resources rule: (resource id, type key, project id) triples,
    sorted, and the same by id."""

    resources: tuple[tuple[str, str, str], ...]
    by_id: Mapping[str, tuple[str, str]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_id = {rid: (kind, project) for rid, kind, project in self.resources}
        object.__setattr__(self, "by_id", MappingProxyType(by_id))

    @classmethod
    def of(cls, triples: Iterable[tuple[str, str, str]]) -> ResourceScope:
        unique = {(str(rid), str(kind), str(project)) for rid, kind, project in triples}
        return cls(tuple(sorted(unique)))

    def names(self, resource_id: str | None, type_key: str) -> bool:
        """Does it name this resource, as one of type `type_key`?"""
        found = self.by_id.get(resource_id) if resource_id is not None else None
        return found is not None and found[0] == type_key

    def holds_in(self, project_id: str, type_key: str) -> bool:
        """Does it name a resource of type `type_key` in this project?"""
        held = self.by_id.values()
        return any(kind == type_key and project == project_id for kind, project in held)

    @property
    def types(self) -> frozenset[str]:
        return frozenset(kind for kind, _ in self.by_id.values())


# "organization", "all_projects", the ids (as strings) of the chosen projects, or the
# chosen resources.
Scope = Literal["organization", "all_projects"] | frozenset[str] | ResourceScope
# `scope_matches` with no resource: the question is about a project (or every project).
_NO_RESOURCE = object()


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule, ready to match: patterns expanded, condition compiled.

    `rule_index` is the 1-based position shown to people ("rule 2 of policy X").
    `groups` names the groups through which the policy reaches the principal, and
    `direct` says whether it is also attached to the principal itself.
    """

    policy_id: str
    policy_name: str
    rule_index: int
    effect: Effect
    actions: frozenset[str]
    scope: Scope
    condition: CompiledCondition | None = None
    condition_source: str = ""
    is_guardrail: bool = False
    groups: tuple[str, ...] = ()
    direct: bool = True
    # The policy's version (`Policy.version`) the rule was compiled from. Shown beside the
    # label rather than in it; left out of equality, as the rule matches the same.
    policy_version: int = field(default=1, compare=False)
    # Worded once: every explicit decision names its rule.
    _label: str = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        kind = "guardrail rule" if self.is_guardrail else "rule"
        text = f"{kind} {self.rule_index} of policy {self.policy_name}"
        if self.groups and not self.direct:
            names = ", ".join(self.groups)
            text += f" through group{'s' if len(self.groups) > 1 else ''} {names}"
        object.__setattr__(self, "_label", text)

    @property
    def label(self) -> str:
        return self._label

    def scope_matches(
        self,
        level: str,
        project_id: str | None,
        resource: ResourceFacts | None = None,
        action: str = "",
    ) -> bool:
        """Does this rule's scope cover an action of `level` in `project_id` (None: no
        project), or on `resource` (then in its project)? `action` is needed for a
        chosen-resources rule. The one definition of scope matching; `CompiledRuleSet`
        precomputes it."""
        if resource is None:
            return self._covers(level, project_id, _NO_RESOURCE, action)
        return self._covers(level, resource.project_id, resource.id, action)

    def _covers(self, level: str, project_id: str | None, resource_id: object, action: str) -> bool:
        # `resource_id`: `_NO_RESOURCE`, or the resource's id (None: not registered yet).
        scope = self.scope
        if level == ORGANIZATION:
            return scope == "organization" and project_id is None
        if scope == "all_projects":
            return True
        if scope == "organization":
            return False
        if isinstance(scope, ResourceScope):
            type_key = RESOURCE_TYPE_OF.get(action, "")
            if resource_id is not _NO_RESOURCE:
                return scope.names(resource_id, type_key)  # type: ignore[arg-type]
            if self.effect == "allow":
                return False  # it grants on its resources, not on a project as a whole
            return project_id is None or scope.holds_in(project_id, type_key)
        if project_id is None:  # "in every project": a deny in any of them takes it back
            return self.effect == "deny"
        return project_id in scope


def compile_rule(
    *,
    policy_id: str,
    policy_name: str,
    rule_index: int,
    effect: str,
    actions: Iterable[str],
    scope: str,
    project_ids: Iterable[str] = (),
    resources: Iterable[tuple[str, str, str]] = (),
    condition: str | None = "",
    is_guardrail: bool = False,
    groups: Iterable[str] = (),
    direct: bool = True,
    strict: bool = True,
    policy_version: int = 1,
) -> CompiledRule:
    """Turn a rule as stored (patterns, scope name, project ids, condition text) into a
    `CompiledRule`.

    `scope` is `organization`, `all_projects`, `projects` (then `project_ids` lists
    them) or `resources` (then `resources` lists (id, type key, project id) triples, and
    every action must be a per-resource action, read, update or delete, of the type of
    one of them; a wildcard keeps those). With `strict=True` (saving a rule) anything
    invalid raises `RuleError`, `UnknownActionError`, `ActionScopeError` or
    `ConditionError`, all `ValueError`s.

    With `strict=False` (compiling stored rules for a decision) catalogue and condition
    problems never raise; the rule degrades in the fail-closed direction: unknown or
    misplaced actions are dropped (they could never match anyway), a condition that no
    longer compiles always errors (so it never allows, and always denies), a projects or
    resources rule with no project or resource left matches nothing. A malformed effect
    or scope still raises.
    """
    if effect not in ("allow", "deny"):
        raise RuleError(f'A rule\'s effect is allow or deny, not "{effect}".')
    if scope not in SCOPES:
        raise RuleError(
            f'A rule\'s scope is organization, all_projects, projects or resources, not "{scope}".'
        )
    patterns = tuple(actions)
    if is_guardrail and effect != "deny":
        if strict:
            raise RuleError("Guardrail rules can only deny.")
        patterns = ()  # an allow guardrail would grant everyone: keep it inert
    rule_scope: Scope
    if scope == "resources":
        rule_scope = ResourceScope.of(
            triple for triple in resources if strict or triple[1] in RESOURCE_TYPES
        )
        if strict:
            _check_resources(rule_scope)
        expanded = _resource_actions(
            patterns, rule_scope.types, strict=strict, deny=effect == "deny"
        )
    elif scope == "projects":
        rule_scope = frozenset(str(project_id) for project_id in project_ids)
        if strict and not rule_scope:
            raise RuleError("Choose at least one project, or scope the rule to all projects.")
    else:
        rule_scope = scope  # type: ignore[assignment]
    if scope != "resources":
        expanded = _expand(patterns, scope, strict=strict, deny=effect == "deny")
    compiled_condition = None
    source = (condition or "").strip()
    if source:
        try:
            compiled_condition = _compiled_condition(source)
        except ConditionError as error:
            if strict:
                raise
            compiled_condition = broken_condition(source, f"invalid condition: {error}")
    return CompiledRule(
        policy_id=str(policy_id),
        policy_name=policy_name,
        rule_index=rule_index,
        effect=effect,  # type: ignore[arg-type]
        actions=expanded,
        scope=rule_scope,
        condition=compiled_condition,
        condition_source=source,
        is_guardrail=is_guardrail,
        groups=tuple(groups),
        direct=direct,
        policy_version=policy_version,
    )


# Compiling a principal's rules repeats the same patterns and conditions across rules,
# principals and authorization versions. Both results are pure functions of their text
# (and of the catalogue, fixed at import), immutable and shareable between threads, so
# they are cached per process; errors are never cached.
_CACHE_SIZE = 4096


@lru_cache(maxsize=_CACHE_SIZE)
def _compiled_condition(source: str) -> CompiledCondition:
    return compile_condition(source)


@lru_cache(maxsize=_CACHE_SIZE)
def _expand(patterns: tuple[str, ...], scope: str, *, strict: bool, deny: bool) -> frozenset[str]:
    # A deny's wildcard also covers the actions only granted by name (catalogue).
    if strict:
        return expand_rule_actions(patterns, scope, deny=deny)
    level = ORGANIZATION if scope == "organization" else "project"
    kept: set[str] = set()
    for pattern in patterns:
        try:
            kept |= expand_pattern(pattern, deny=deny)
        except CatalogueError:
            continue
    return frozenset(name for name in kept if ACTIONS[name].level == level)


def _check_resources(scope: ResourceScope) -> None:
    if not scope.resources:
        raise RuleError("Choose at least one resource, or scope the rule to projects.")
    for _, kind, _ in scope.resources:
        if kind not in RESOURCE_TYPES:
            raise RuleError(f'"{kind}" is not a resource type.')


@lru_cache(maxsize=_CACHE_SIZE)
def _resource_actions(
    patterns: tuple[str, ...], types: frozenset[str], *, strict: bool, deny: bool
) -> frozenset[str]:
    """The per-resource actions of `types` among the patterns' (see `compile_rule`)."""
    if not strict:
        kept = _expand(patterns, "projects", strict=False, deny=deny)
        return frozenset(name for name in kept if PER_RESOURCE_ACTIONS.get(name) in types)
    expand_rule_actions(patterns, "resources", deny=deny)  # unknown names, levels
    result: set[str] = set()
    for pattern in patterns:
        expanded = expand_pattern(pattern, deny=deny)
        fitting = {name for name in expanded if PER_RESOURCE_ACTIONS.get(name) in types}
        if fitting and ("*" in pattern or fitting == expanded):
            result |= fitting
            continue
        wrong = sorted(expanded - fitting)
        if "*" in pattern or not wrong:
            raise ActionScopeError(
                f'"{pattern}" holds no read, update or delete action of the chosen resources.'
            )
        name = wrong[0]
        if name not in PER_RESOURCE_ACTIONS:
            raise ActionScopeError(
                f'"{name}" is decided on a project, not on one resource: scope it to projects.'
            )
        kind = RESOURCE_TYPES[PER_RESOURCE_ACTIONS[name]].plural.lower()
        raise ActionScopeError(f'"{name}" acts on {kind}, and no chosen resource is one.')
    return frozenset(result)


def compile_managed_policy(policy: ManagedPolicy, *, policy_id: str) -> list[CompiledRule]:
    """The rules of a built-in policy, compiled (they are checked at import)."""
    return [
        compile_rule(
            policy_id=policy_id,
            policy_name=policy.name,
            rule_index=index,
            effect=spec.effect,
            actions=spec.actions,
            scope=spec.scope,
        )
        for index, spec in enumerate(policy.rules, start=1)
    ]


class _Plan:
    """The candidates of one (action, project, resource) bucket, with what deciding them
    needs: whether any has a condition, and the fields and functions all their conditions
    read (so a CEL activation, if one is needed at all, is built once with all of them).

    `outcomes` memoises the explicit decisions of a conditional plan by which of its
    rules matched (a bit per rule), when their words depend on nothing else: no
    condition error, no deny condition to report, and no condition reading the
    principal's or the resource's facts (whose values an allow names, and which differ
    from one resource to the next). Conditions are still evaluated on every decision;
    only wording the answer is saved.
    """

    __slots__ = ("conditional", "fields", "functions", "outcomes", "rules")

    def __init__(self, rules: tuple[CompiledRule, ...]) -> None:
        self.rules = rules
        conditions = [rule.condition for rule in rules if rule.condition is not None]
        self.conditional = bool(conditions)
        self.fields: frozenset[str] = _NOTHING
        self.functions: frozenset[str] = _NOTHING
        self.outcomes: dict[int, Decision] | None = None
        if conditions:
            self.fields = frozenset().union(*(c.fields for c in conditions))
            self.functions = frozenset().union(*(c.functions.keys() for c in conditions))
            if self.fields.isdisjoint(LAZY_VARIABLES):
                self.outcomes = {}


_NOTHING: frozenset[str] = frozenset()
_NO_VALUES: Mapping[str, Any] = {}
_NO_PLAN = _Plan(())
# The resource part of a plan's key: None for a question about a project; the resource's
# id when a chosen-resources rule names it; else this marker (no chosen-resources rule
# can match, so every other resource of the project shares the plan and its decision).
_ANY_RESOURCE = "\x00any resource"
# Plans and decisions memoised per rule set (see `CompiledRuleSet`): a bound on distinct
# (action, project, resource) keys, far above what one organization's pages ask; and on
# the outcomes memoised per plan (a few rules' conditions, so a few combinations).
_MEMO_LIMIT = 4096
_OUTCOMES_LIMIT = 64

_PlanKey = tuple[str, str | None, str | None]


class CompiledRuleSet:
    """A principal's rules, indexed by action so a decision reads only the rules that can
    match it: O(matching rules), not O(all rules).

    Immutable once built, so one instance can be cached and shared between threads.
    Rule order is kept: it decides which rule is named when several match. Two memos
    fill as decisions are asked, both pure functions of the rule set (a racing write
    stores an equal value): the candidates per (action, project, resource) with their
    conditions' needs (`_Plan`), and the decisions that no request fact can change (no
    condition among their candidates). Chosen-resources rules are indexed by the ids they
    name: a resource they name has its own plan (and memoised decision), every other
    resource of a project shares one, so neither memo ever serves a decision involving
    one resource's rule to another resource.
    """

    __slots__ = ("_by_action", "_decisions", "_plans", "_resource_ids", "rules")

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        by_action: dict[str, list[CompiledRule]] = {}
        resource_ids: set[str] = set()
        for rule in self.rules:
            for action in rule.actions:
                by_action.setdefault(action, []).append(rule)
            if isinstance(rule.scope, ResourceScope) and rule.actions:
                resource_ids.update(rule.scope.by_id)
        self._by_action: Mapping[str, tuple[CompiledRule, ...]] = {
            action: tuple(matching) for action, matching in by_action.items()
        }
        self._resource_ids = frozenset(resource_ids)
        self._plans: dict[_PlanKey, _Plan] = {}
        self._decisions: dict[_PlanKey, Decision] = {}

    @classmethod
    def empty(cls) -> CompiledRuleSet:
        return _EMPTY

    def for_action(self, action: str) -> tuple[CompiledRule, ...]:
        """The rules naming `action`, in order, whatever their scope."""
        return self._by_action.get(action, ())

    def candidates(
        self, action: str, project_id: str | None, resource: ResourceFacts | None = None
    ) -> tuple[CompiledRule, ...]:
        """The rules whose action and scope match, in order; conditions not yet checked.
        With a resource, `project_id` is the resource's."""
        known = ACTIONS.get(action)
        if known is None:
            return ()
        if resource is None:
            return self._plan(action, known.level, project_id, None).rules
        if RESOURCE_TYPE_OF.get(action) != resource.type:
            return ()
        marker = self._marker(resource)
        return self._plan(action, known.level, resource.project_id, marker).rules

    def _marker(self, resource: ResourceFacts) -> str:
        rid = resource.id
        return rid if rid is not None and rid in self._resource_ids else _ANY_RESOURCE

    def _plan(self, action: str, level: str, project_id: str | None, marker: str | None) -> _Plan:
        if level == ORGANIZATION and project_id is not None:
            return _NO_PLAN  # organization-level actions are never granted in a project
        key = (action, project_id, marker)
        plan = self._plans.get(key)
        if plan is None:
            matching = self._by_action.get(action, ())
            on: object = _NO_RESOURCE
            if marker is not None:
                on = None if marker == _ANY_RESOURCE else marker
            plan = _Plan(tuple(r for r in matching if r._covers(level, project_id, on, action)))
            if len(self._plans) < _MEMO_LIMIT:
                self._plans[key] = plan
        return plan

    def __iter__(self) -> Iterator[CompiledRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


_EMPTY = CompiledRuleSet()

# ------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with what a person needs to understand it.

    `matched_rules` are every rule that matched (denies and allows, in rule order);
    `deciding_rule` is the one named in `explanation`; `condition_errors` lists rules
    whose condition failed at run time, with the error. A denial in which conditions
    took part carries `condition_reports`: the deciding deny rule's condition, or the
    conditions of the allow rules the request did not meet, in words. For a question
    about a resource, `project_id` is the resource's project.
    """

    allowed: bool
    reason: Reason
    action: str
    project_id: str | None
    explanation: str
    deciding_rule: CompiledRule | None = None
    matched_rules: tuple[CompiledRule, ...] = ()
    condition_errors: tuple[tuple[CompiledRule, str], ...] = ()
    condition_reports: tuple[ConditionReport, ...] = ()

    @property
    def effect(self) -> Effect:
        return "allow" if self.allowed else "deny"

    @property
    def is_guardrail(self) -> bool:
        return self.deciding_rule is not None and self.deciding_rule.is_guardrail

    @property
    def missing_action(self) -> str | None:
        """The action to name on a 403 page, or None when allowed."""
        return None if self.allowed else self.action


def decide(
    *,
    principal: Principal,
    rules: CompiledRuleSet | Sequence[CompiledRule],
    action: str,
    project_id: str | None,
    request: RequestFacts,
    resource: ResourceFacts | None = None,
) -> Decision:
    """Decide `action` (in project `project_id`, or at organization level when None; or,
    given a `resource`, on that resource in its project, whatever `project_id` says).

    See the module docstring for the semantics. Pass a cached `CompiledRuleSet`: a plain
    sequence is indexed on every call, and a cached one remembers the decisions no
    request fact can change (a dictionary lookup the next time). Cost is proportional to
    the rules naming the action; conditions run only when a conditional rule survives
    action and scope matching, through their Python fast path when they have one, and
    the CEL activation is built at most once per decision, only if a condition needs it.
    Never raises for a well-typed call.
    """

    known = ACTIONS.get(action)
    if resource is not None:
        project_id = resource.project_id
    if known is None:
        explanation = f'denied: "{action}" is not a known action'
        return Decision(False, "unknown_action", action, project_id, explanation)
    if resource is not None and RESOURCE_TYPE_OF.get(action) != resource.type:
        explanation = f"denied: {action} is not an action on a {resource.type} resource"
        return Decision(False, "implicit_deny", action, project_id, explanation)
    if not principal.is_active:
        who = principal.label or f"this {principal.type}"
        explanation = f"denied: {who} is suspended or removed"
        return Decision(False, "inactive", action, project_id, explanation)
    if principal.is_owner:
        return Decision(True, "owner", action, project_id, "allowed: owners have full access")

    ruleset = rules if isinstance(rules, CompiledRuleSet) else CompiledRuleSet(rules)
    memo = ruleset._decisions
    marker = None if resource is None else ruleset._marker(resource)
    key = (action, project_id, marker)
    decision = memo.get(key)
    if decision is not None:
        return decision
    plan = ruleset._plan(action, known.level, project_id, marker)
    if not plan.conditional:
        decision = _conclude(action, known.level, project_id, resource, plan.rules, (), ())
        if len(memo) < _MEMO_LIMIT:
            memo[key] = decision
        return decision
    matched, unmet, errors, values, held = _match_conditions(plan, principal, request, resource)
    outcomes = plan.outcomes
    if outcomes is not None and not errors:
        decision = outcomes.get(held)
        if decision is not None:
            return decision
    decision = _conclude(action, known.level, project_id, resource, matched, unmet, errors, values)
    if (
        outcomes is not None
        and not errors
        and decision.deciding_rule is not None
        and (decision.allowed or decision.deciding_rule.condition is None)
        and len(outcomes) < _OUTCOMES_LIMIT
    ):
        outcomes[held] = decision
    return decision


def _conclude(
    action: str,
    level: str,
    project_id: str | None,
    resource: ResourceFacts | None,
    matched: tuple[CompiledRule, ...],
    unmet: Sequence[CompiledRule],
    errors: tuple[tuple[CompiledRule, str], ...],
    values: Mapping[str, Any] = _NO_VALUES,
) -> Decision:
    """Step 6 of the semantics, with the explanation, from the rules that matched.

    `values` are the request's facts as the conditions saw them (none when no candidate
    had a condition): a denial explains the conditions that took part with them, an
    allow the tags its rule's condition read."""
    deciding: CompiledRule | None = None
    allowing: CompiledRule | None = None
    for rule in matched:
        if rule.effect == "deny":
            # Name a guardrail first: it is the organization-wide reason.
            if deciding is None or (rule.is_guardrail and not deciding.is_guardrail):
                deciding = rule
        elif allowing is None:
            allowing = rule
    reports: tuple[ConditionReport, ...] = ()
    if deciding is not None:
        explanation = f"denied by {deciding.label}" + _scope_note(deciding, project_id, resource)
        error = next((m for rule, m in errors if rule is deciding), None) if errors else None
        if error:
            explanation += f" (its condition could not be evaluated: {error})"
        if deciding.condition is not None:
            reports = (report_condition(deciding, values, error),)
            if not error:
                explanation += f", as {reports[0].text}"
        reason: Reason = "explicit_deny"
    elif allowing is not None:
        deciding = allowing
        explanation = f"allowed by {deciding.label}" + _scope_note(deciding, project_id, resource)
        if deciding.condition is not None and (read := tag_reads(deciding, values)):
            explanation += f", as {read}"
        reason = "explicit_allow"
    else:
        explanation, reports = _implicit_deny(
            action, level, project_id, resource, unmet, errors, values
        )
        reason = "implicit_deny"
    return Decision(
        reason == "explicit_allow",
        reason,
        action,
        project_id,
        explanation,
        deciding,
        matched,
        errors,
        reports,
    )


def _scope_note(rule: CompiledRule, project_id: str | None, resource: ResourceFacts | None) -> str:
    """What a deciding rule's scope has to do with the question, when it is not plain."""
    scope = rule.scope
    if isinstance(scope, ResourceScope):
        if resource is not None:
            return f", which names this resource ({resource.id})"
        if project_id is None:
            return f", which denies it on {describe_scope(scope)}"
        return (
            f", which denies it on {describe_scope(scope, project_id=project_id)} in this project"
        )
    if project_id is None and resource is None and isinstance(scope, frozenset):
        return f", which denies it in {describe_scope(scope)}"
    return ""


def _match_conditions(
    plan: _Plan, principal: Principal, request: RequestFacts, resource: ResourceFacts | None
) -> tuple[
    tuple[CompiledRule, ...],
    list[CompiledRule],
    tuple[tuple[CompiledRule, str], ...],
    Mapping[str, Any],
    int,
]:
    """Split a conditional plan's candidates into (matched, allow rules not met,
    condition errors), with the facts the conditions read (for a denial's explanation)
    and which candidates matched (bit n: the n-th).

    The condition context is created only here, once. Conditions with a Python fast
    path read its values directly; a CEL activation is built at most once, with the
    fields and functions of all the plan's conditions, and only if one needs it.
    """
    context = ConditionContext(
        ip=request.ip,
        user_agent=request.user_agent,
        time=request.time,
        mfa=request.mfa,
        principal_type=principal.type,
        principal_id=principal.id,
        principal_tags=principal.tags,
        resource=resource,
    )
    context.expect(plan.fields, plan.functions)
    values, invalid = context.values, context.invalid
    matched: list[CompiledRule] = []
    unmet: list[CompiledRule] = []
    errors: list[tuple[CompiledRule, str]] = []
    held, bit = 0, 1
    for rule in plan.rules:
        condition = rule.condition
        bit <<= 1
        if condition is None:
            matched.append(rule)
            held |= bit
            continue
        holds: bool | None = None
        # A condition reading an invalid fact errors as a whole: only the library says so.
        if condition.fast is not None and (not invalid or condition.fields.isdisjoint(invalid)):
            try:
                holds = condition.fast(values)
            except Exception:  # the library answers instead, with its own error semantics
                holds = None
        if holds is None:
            try:
                holds = condition.evaluate(context)
            except Exception as error:  # whatever the failure, a decision fails closed
                errors.append((rule, str(error)))
                holds = rule.effect == "deny"
        if holds:
            matched.append(rule)
            held |= bit
        elif rule.effect == "allow":
            unmet.append(rule)
    return tuple(matched), unmet, tuple(errors), values, held


def _implicit_deny(
    action: str,
    level: str,
    project_id: str | None,
    resource: ResourceFacts | None,
    unmet: Sequence[CompiledRule],
    errors: Sequence[tuple[CompiledRule, str]],
    values: Mapping[str, Any],
) -> tuple[str, tuple[ConditionReport, ...]]:
    if level == ORGANIZATION and project_id is not None:
        text = f"denied: {action} is an organization-level action, not granted in a project"
        return text, ()
    if resource is not None:
        where = " on this resource"
    elif level == ORGANIZATION:
        where = ""
    else:
        where = " in this project" if project_id else " in every project"
    text = f"denied: no policy grants {action}{where}"
    failed = {id(rule): message for rule, message in errors}
    notes = []
    reports = []
    for rule in unmet:
        error = failed.get(id(rule))
        report = report_condition(rule, values, error)
        reports.append(report)
        if error is not None:
            notes.append(f"{rule.label} grants it, but its condition failed ({error})")
        else:
            notes.append(f"{rule.label} grants it only when its condition holds: {report.text}")
    return "; ".join([text, *notes]), tuple(reports)


# ----------------------------------------------------------------------- wording


def describe_scope(
    scope: Scope,
    project_names: Mapping[str, str] | None = None,
    resource_names: Mapping[str, str] | None = None,
    *,
    project_id: str | None = None,
) -> str:
    """Plain words for a scope: "organization", "all projects", "projects A, B",
    "instance web-1, bucket logs" (names by id from the mappings, else the ids; only
    those in `project_id` when given, for chosen resources)."""
    if scope == "organization":
        return "organization"
    if scope == "all_projects":
        return "all projects"
    if isinstance(scope, ResourceScope):
        shown = []
        for rid, kind, project in scope.resources:
            if project_id is not None and project != project_id:
                continue
            singular = RESOURCE_TYPES[kind].singular if kind in RESOURCE_TYPES else kind
            if singular[1:2].islower():  # "Instance" -> "instance", "DNS zone" stays
                singular = singular.lower()
            shown.append(f"{singular} {(resource_names or {}).get(rid, rid)}")
        return ", ".join(sorted(shown)) or "no resource"
    names = sorted((project_names or {}).get(pid, pid) for pid in scope)  # type: ignore[union-attr]
    return f"project{'s' if len(names) != 1 else ''} {', '.join(names)}"
