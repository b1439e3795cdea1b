"""The one decision function: may this principal do this action here, and why.

Pure: compiled rules and request facts in, a `Decision` out; no database, no Django.
Gathering a principal's rules (attached policies, groups, guardrails) and caching the
compiled `CompiledRuleSet` by authorization version sit beside it, in Django code.

Semantics, in order:

1. an action missing from the catalogue is denied (`unknown_action`), owners included,
   so a typo in a guard never turns into a silent allow;
2. an inactive (suspended or removed) principal is denied (`inactive`), owner or not;
3. an owner is allowed (`owner`);
4. a rule matches when the action is among its actions, its scope matches and its
   condition is true. Scope: an organization-level action is matched by organization
   rules, and only when no project is given; a project-level action with a project is
   matched by `all_projects` rules and by rules listing that project; a project-level
   action with no project ("in every project") is matched by `all_projects` rules and by
   deny rules listing any project: an allow must cover every project, and a deny in one
   project means the action is not allowed in every project;
5. a condition that fails at run time fails closed: an allow rule does not match, a deny
   rule does (the error is kept in the decision);
6. any matching deny → deny (`explicit_deny`); else any matching allow → allow
   (`explicit_allow`); else deny (`implicit_deny`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from policies.catalogue import (
    ACTIONS,
    ORGANIZATION,
    SCOPES,
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
from policies.explain import ConditionReport, report_condition

Effect = Literal["allow", "deny"]
# "organization", "all_projects", or the ids (as strings) of the chosen projects.
Scope = Literal["organization", "all_projects"] | frozenset[str]
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

    def __post_init__(self) -> None:
        if self.type not in ("user", "application"):
            raise ValueError(f"principal type must be user or application, not {self.type!r}")


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

    @property
    def label(self) -> str:
        kind = "guardrail rule" if self.is_guardrail else "rule"
        text = f"{kind} {self.rule_index} of policy {self.policy_name}"
        if self.groups and not self.direct:
            names = ", ".join(self.groups)
            text += f" through group{'s' if len(self.groups) > 1 else ''} {names}"
        return text

    def scope_matches(self, level: str, project_id: str | None) -> bool:
        """Does this rule's scope cover an action of `level` in `project_id` (None: no
        project)? The one definition of scope matching; `CompiledRuleSet` precomputes it."""
        if level == ORGANIZATION:
            return self.scope == "organization" and project_id is None
        if self.scope == "all_projects":
            return True
        if self.scope == "organization":
            return False
        if project_id is None:  # "in every project": a deny in any of them takes it back
            return self.effect == "deny"
        return project_id in self.scope


def compile_rule(
    *,
    policy_id: str,
    policy_name: str,
    rule_index: int,
    effect: str,
    actions: Iterable[str],
    scope: str,
    project_ids: Iterable[str] = (),
    condition: str | None = "",
    is_guardrail: bool = False,
    groups: Iterable[str] = (),
    direct: bool = True,
    strict: bool = True,
) -> CompiledRule:
    """Turn a rule as stored (patterns, scope name, project ids, condition text) into a
    `CompiledRule`.

    `scope` is `organization`, `all_projects` or `projects` (then `project_ids` lists
    them). With `strict=True` (saving a rule) anything invalid raises `RuleError`,
    `UnknownActionError`, `ActionScopeError` or `ConditionError`, all `ValueError`s.

    With `strict=False` (compiling stored rules for a decision) catalogue and condition
    problems never raise; the rule degrades in the fail-closed direction: unknown or
    misplaced actions are dropped (they could never match anyway), a condition that no
    longer compiles always errors (so it never allows, and always denies), a projects
    rule with no project left matches nothing. A malformed effect or scope still raises.
    """
    if effect not in ("allow", "deny"):
        raise RuleError(f'A rule\'s effect is allow or deny, not "{effect}".')
    if scope not in SCOPES:
        raise RuleError(
            f'A rule\'s scope is organization, all_projects or projects, not "{scope}".'
        )
    patterns = tuple(actions)
    if is_guardrail and effect != "deny":
        if strict:
            raise RuleError("Guardrail rules can only deny.")
        patterns = ()  # an allow guardrail would grant everyone: keep it inert
    expanded = _expand(patterns, scope, strict=strict, deny=effect == "deny")
    rule_scope: Scope
    if scope == "projects":
        rule_scope = frozenset(str(project_id) for project_id in project_ids)
        if strict and not rule_scope:
            raise RuleError("Choose at least one project, or scope the rule to all projects.")
    else:
        rule_scope = scope  # type: ignore[assignment]
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
    """The candidates of one (action, project) bucket, with what deciding them needs:
    whether any has a condition, and the fields and functions all their conditions read
    (so a CEL activation, if one is needed at all, is built once with all of them)."""

    __slots__ = ("conditional", "fields", "functions", "rules")

    def __init__(self, rules: tuple[CompiledRule, ...]) -> None:
        self.rules = rules
        conditions = [rule.condition for rule in rules if rule.condition is not None]
        self.conditional = bool(conditions)
        self.fields: frozenset[str] = _NOTHING
        self.functions: frozenset[str] = _NOTHING
        if conditions:
            self.fields = frozenset().union(*(c.fields for c in conditions))
            self.functions = frozenset().union(*(c.functions.keys() for c in conditions))


_NOTHING: frozenset[str] = frozenset()
_NO_VALUES: Mapping[str, Any] = {}
_NO_PLAN = _Plan(())
# Plans and decisions memoised per rule set (see `CompiledRuleSet`): a bound on distinct
# (action, project) pairs, far above what one organization's pages ask.
_MEMO_LIMIT = 4096


class CompiledRuleSet:
    """A principal's rules, indexed by action so a decision reads only the rules that can
    match it: O(matching rules), not O(all rules).

    Immutable once built, so one instance can be cached and shared between threads.
    Rule order is kept: it decides which rule is named when several match. Two memos
    fill as decisions are asked, both pure functions of the rule set (a racing write
    stores an equal value): the candidates per (action, project) with their conditions'
    needs (`_Plan`), and the decisions that no request fact can change (no condition
    among their candidates).
    """

    __slots__ = ("_by_action", "_decisions", "_plans", "rules")

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        by_action: dict[str, list[CompiledRule]] = {}
        for rule in self.rules:
            for action in rule.actions:
                by_action.setdefault(action, []).append(rule)
        self._by_action: Mapping[str, tuple[CompiledRule, ...]] = {
            action: tuple(matching) for action, matching in by_action.items()
        }
        self._plans: dict[tuple[str, str | None], _Plan] = {}
        self._decisions: dict[tuple[str, str | None], Decision] = {}

    @classmethod
    def empty(cls) -> CompiledRuleSet:
        return _EMPTY

    def for_action(self, action: str) -> tuple[CompiledRule, ...]:
        """The rules naming `action`, in order, whatever their scope."""
        return self._by_action.get(action, ())

    def candidates(self, action: str, project_id: str | None) -> tuple[CompiledRule, ...]:
        """The rules whose action and scope match, in order; conditions not yet checked."""
        known = ACTIONS.get(action)
        if known is None:
            return ()
        return self._plan(action, known.level, project_id).rules

    def _plan(self, action: str, level: str, project_id: str | None) -> _Plan:
        if level == ORGANIZATION and project_id is not None:
            return _NO_PLAN  # organization-level actions are never granted in a project
        key = (action, project_id)
        plan = self._plans.get(key)
        if plan is None:
            matching = self._by_action.get(action, ())
            plan = _Plan(tuple(r for r in matching if r.scope_matches(level, project_id)))
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
    conditions of the allow rules the request did not meet, in words.
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
) -> Decision:
    """Decide `action` (in project `project_id`, or at organization level when None).

    See the module docstring for the semantics. Pass a cached `CompiledRuleSet`: a plain
    sequence is indexed on every call, and a cached one remembers the decisions no
    request fact can change (a dictionary lookup the next time). Cost is proportional to
    the rules naming the action; conditions run only when a conditional rule survives
    action and scope matching, through their Python fast path when they have one, and
    the CEL activation is built at most once per decision, only if a condition needs it.
    Never raises for a well-typed call.
    """

    known = ACTIONS.get(action)
    if known is None:
        explanation = f'denied: "{action}" is not a known action'
        return Decision(False, "unknown_action", action, project_id, explanation)
    if not principal.is_active:
        who = principal.label or f"this {principal.type}"
        explanation = f"denied: {who} is suspended or removed"
        return Decision(False, "inactive", action, project_id, explanation)
    if principal.is_owner:
        return Decision(True, "owner", action, project_id, "allowed: owners have full access")

    ruleset = rules if isinstance(rules, CompiledRuleSet) else CompiledRuleSet(rules)
    memo = ruleset._decisions
    key = (action, project_id)
    decision = memo.get(key)
    if decision is not None:
        return decision
    plan = ruleset._plan(action, known.level, project_id)
    if not plan.conditional:
        decision = _conclude(action, known.level, project_id, plan.rules, (), ())
        if len(memo) < _MEMO_LIMIT:
            memo[key] = decision
        return decision
    matched, unmet, errors, values = _match_conditions(plan, principal, request)
    return _conclude(action, known.level, project_id, matched, unmet, errors, values)


def _conclude(
    action: str,
    level: str,
    project_id: str | None,
    matched: tuple[CompiledRule, ...],
    unmet: Sequence[CompiledRule],
    errors: tuple[tuple[CompiledRule, str], ...],
    values: Mapping[str, Any] = _NO_VALUES,
) -> Decision:
    """Step 6 of the semantics, with the explanation, from the rules that matched.

    `values` are the request's facts as the conditions saw them (none when no candidate
    had a condition): a denial explains the conditions that took part with them."""
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
        explanation = f"denied by {deciding.label}"
        if project_id is None and isinstance(deciding.scope, frozenset):
            explanation += f", which denies it in {describe_scope(deciding.scope)}"
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
        explanation = f"allowed by {deciding.label}"
        reason = "explicit_allow"
    else:
        explanation, reports = _implicit_deny(action, level, project_id, unmet, errors, values)
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


def _match_conditions(
    plan: _Plan, principal: Principal, request: RequestFacts
) -> tuple[
    tuple[CompiledRule, ...],
    list[CompiledRule],
    tuple[tuple[CompiledRule, str], ...],
    Mapping[str, Any],
]:
    """Split a conditional plan's candidates into (matched, allow rules not met,
    condition errors), with the facts the conditions read (for a denial's explanation).

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
    )
    context.expect(plan.fields, plan.functions)
    values, invalid = context.values, context.invalid
    matched: list[CompiledRule] = []
    unmet: list[CompiledRule] = []
    errors: list[tuple[CompiledRule, str]] = []
    for rule in plan.rules:
        condition = rule.condition
        if condition is None:
            matched.append(rule)
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
        elif rule.effect == "allow":
            unmet.append(rule)
    return tuple(matched), unmet, tuple(errors), values


def _implicit_deny(
    action: str,
    level: str,
    project_id: str | None,
    unmet: Sequence[CompiledRule],
    errors: Sequence[tuple[CompiledRule, str]],
    values: Mapping[str, Any],
) -> tuple[str, tuple[ConditionReport, ...]]:
    if level == ORGANIZATION and project_id is not None:
        text = f"denied: {action} is an organization-level action, not granted in a project"
        return text, ()
    where = (
        "" if level == ORGANIZATION else (" in this project" if project_id else " in every project")
    )
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


def describe_scope(scope: Scope, project_names: Mapping[str, str] | None = None) -> str:
    """Plain words for a scope: "organization", "all projects", "projects A, B"."""
    if scope == "organization":
        return "organization"
    if scope == "all_projects":
        return "all projects"
    names = sorted((project_names or {}).get(pid, pid) for pid in scope)  # type: ignore[union-attr]
    return f"project{'s' if len(names) != 1 else ''} {', '.join(names)}"
