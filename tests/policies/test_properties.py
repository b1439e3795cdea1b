"""Properties of the evaluator that must hold for any rules and any request.

The strategies draw rules with every kind of pattern (actions, permission sets,
wildcards), every scope, guardrails, and conditions that hold, fail, or error at run time
(an unparsable address, a condition that no longer compiles): fail-closed conditions are
what makes monotonicity non-obvious. Everything runs on the pure evaluator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from policies.catalogue import ACTIONS
from policies.conditions.compiler import ConditionContext, ConditionError, compile_condition
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Decision,
    Principal,
    RequestFacts,
    ResourceFacts,
    ResourceScope,
    compile_rule,
    decide,
)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

PROJECTS = ("p1", "p2", "p3")
ACTION_NAMES = (
    "iam:users:list",
    "iam:users:invite",
    "billing:invoices:read",
    "billing:contact:update",
    "dns:zones:read",
    "dns:zones:delete",
    "compute:instances:create",
)
PATTERNS = {
    "organization": ("iam:users:list", "IAMReadOnly", "iam:*", "billing:*", "BillingManager", "*"),
    "project": ("dns:zones:read", "DNSReadOnly", "dns:*", "compute:instances:*", "*"),
}
IN_OFFICE = 'ip_in_range(request.ip, "10.0.0.0/8")'
# Conditions that hold or not, and some that error at run time on some requests: an
# address that does not parse, a user agent that is not a number, a stored condition that
# no longer compiles (lenient compile: it always errors). Some have no Python fast path.
CONDITIONS = (
    "",
    "request.mfa",
    "!request.mfa",
    IN_OFFICE,
    f"!{IN_OFFICE}",
    f'{IN_OFFICE} || ip_in_range(request.ip, "2001:db8::/32")',
    'request.user_agent.contains("curl")',
    'request.time.getHours("Europe/Paris") >= 9 && request.time.getHours("Europe/Paris") < 18',
    'principal.type == "application"',
    'request.user_agent.matches("^curl")',  # no fast path: the library only
    'request.ip.ip_in_range("10.0.0.0/8")',  # no fast path either
    "int(request.user_agent) > 3",  # errors unless the user agent is a number
    "request.retired_field == 1",  # no longer compiles: always errors
)
USER = Principal(type="user", id="u-1", label="bob@example.com")
APPLICATION = Principal(type="application", id="a-1", label="deploy-bot")

_COMPILED: dict[tuple[object, ...], CompiledRule] = {}


def _rule(
    effect: str,
    pattern: str,
    scope: str,
    projects: tuple[str, ...],
    condition: str,
    guardrail: bool,
    policy: str,
) -> CompiledRule:
    key = (effect, pattern, scope, projects, condition, guardrail, policy)
    if key not in _COMPILED:  # compiling CEL per example would dominate the run time
        _COMPILED[key] = compile_rule(
            policy_id=f"id-{policy}",
            policy_name=policy,
            rule_index=1,
            effect=effect,
            actions=[pattern],
            scope=scope,
            project_ids=projects,
            condition=condition,
            is_guardrail=guardrail,
            strict=False,
        )
    return _COMPILED[key]


@st.composite
def rules(draw: st.DrawFn, effect: str | None = None) -> CompiledRule:
    scope = draw(st.sampled_from(("organization", "all_projects", "projects")))
    level = "organization" if scope == "organization" else "project"
    projects: tuple[str, ...] = ()
    if scope == "projects":
        projects = tuple(sorted(draw(st.sets(st.sampled_from(PROJECTS), min_size=1))))
    chosen = effect or draw(st.sampled_from(("allow", "deny")))
    return _rule(
        chosen,
        draw(st.sampled_from(PATTERNS[level])),
        scope,
        projects,
        draw(st.sampled_from(CONDITIONS)),
        chosen == "deny" and draw(st.booleans()),
        draw(st.sampled_from(("A", "B", "C", "D"))),
    )


# Facts the library cannot take (a lone surrogate, a time beyond UTC's range) and the
# extremes of its range: conditions reading them fail closed, decide() never raises.
EXTREME_TIMES = (
    dt.datetime.max.replace(tzinfo=dt.UTC),
    dt.datetime.min.replace(tzinfo=dt.UTC),
    dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))),
    dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
)
requests = st.builds(
    RequestFacts,
    ip=st.sampled_from(("10.1.2.3", "203.0.113.9", "2001:db8::1", "::ffff:10.1.2.3", "", "x")),
    user_agent=st.sampled_from(("curl/8.9.1", "Mozilla/5.0", "42", "", "curl\ud800")),
    time=st.sampled_from(
        (
            dt.datetime(2025, 3, 4, 10, 0, tzinfo=dt.UTC),
            dt.datetime(2025, 3, 4, 22, 30, tzinfo=dt.UTC),
            dt.datetime(2025, 7, 1, 6, 59, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
            *EXTREME_TIMES,
        )
    ),
    mfa=st.booleans(),
)
rule_lists = st.lists(rules(), max_size=10)
actions = st.sampled_from(ACTION_NAMES)
project_ids = st.sampled_from((None, *PROJECTS, "p9"))
principals = st.sampled_from((USER, APPLICATION))


def _decide(
    rule_list: Sequence[CompiledRule],
    action: str,
    project_id: str | None,
    request: RequestFacts,
    principal: Principal = USER,
) -> Decision:
    return decide(
        principal=principal,
        rules=CompiledRuleSet(rule_list),
        action=action,
        project_id=project_id,
        request=request,
    )


# ------------------------------------------------------------------ monotonicity


@PROPERTY_SETTINGS
@given(rule_lists, rules(effect="allow"), st.integers(0, 10), actions, project_ids, requests)
def test_adding_an_allow_rule_never_removes_access(
    before: list[CompiledRule],
    added: CompiledRule,
    position: int,
    action: str,
    project_id: str | None,
    request: RequestFacts,
) -> None:
    after = [*before[:position], added, *before[position:]]
    if _decide(before, action, project_id, request).allowed:
        assert _decide(after, action, project_id, request).allowed


@PROPERTY_SETTINGS
@given(rule_lists, rules(effect="deny"), actions, project_ids, requests)
def test_adding_a_deny_rule_never_grants_access(
    before: list[CompiledRule],
    added: CompiledRule,
    action: str,
    project_id: str | None,
    request: RequestFacts,
) -> None:
    if not _decide(before, action, project_id, request).allowed:
        assert not _decide([*before, added], action, project_id, request).allowed


@PROPERTY_SETTINGS
@given(rule_lists, st.data(), actions, project_ids, requests, principals)
def test_removing_allow_rules_never_adds_access(
    before: list[CompiledRule],
    data: st.DataObject,
    action: str,
    project_id: str | None,
    request: RequestFacts,
    principal: Principal,
) -> None:
    """Detaching a policy of allow rules (or deleting any of its allow rules) never
    grants anything. Deny rules are kept: removing a deny can grant access, as in AWS."""
    removed = data.draw(st.sets(st.sampled_from(range(len(before))) if before else st.nothing()))
    after = [r for i, r in enumerate(before) if i not in removed or r.effect == "deny"]
    if not _decide(before, action, project_id, request, principal).allowed:
        assert not _decide(after, action, project_id, request, principal).allowed


@PROPERTY_SETTINGS
@given(rule_lists, st.sampled_from(("A", "B", "C", "D")), actions, project_ids, requests)
def test_detaching_a_policy_without_deny_rules_never_adds_access(
    before: list[CompiledRule],
    policy: str,
    action: str,
    project_id: str | None,
    request: RequestFacts,
) -> None:
    detached = [r for r in before if r.policy_name == policy]
    if any(r.effect == "deny" for r in detached):
        return  # see test_detaching_a_policy_with_a_deny_rule_can_add_access
    after = [r for r in before if r.policy_name != policy]
    if not _decide(before, action, project_id, request).allowed:
        assert not _decide(after, action, project_id, request).allowed


def test_detaching_a_policy_with_a_deny_rule_can_add_access() -> None:
    """Why the property above excludes deny rules: they are the exception, by design."""
    grant = _rule("allow", "iam:*", "organization", (), "", False, "A")
    deny = _rule("deny", "iam:users:list", "organization", (), "", False, "B")
    request = RequestFacts(ip="10.1.2.3", user_agent="", time=dt.datetime.now(dt.UTC))
    assert not _decide([grant, deny], "iam:users:list", None, request).allowed
    assert _decide([grant], "iam:users:list", None, request).allowed


@PROPERTY_SETTINGS
@given(rule_lists, actions, project_ids, requests)
def test_a_rule_whose_condition_errors_never_allows(
    rule_list: list[CompiledRule],
    action: str,
    project_id: str | None,
    request: RequestFacts,
) -> None:
    decision = _decide(rule_list, action, project_id, request)
    erroring = {id(r) for r, _ in decision.condition_errors}
    assert all(r.effect == "deny" for r in decision.matched_rules if id(r) in erroring)
    if decision.allowed:
        assert id(decision.deciding_rule) not in erroring


@PROPERTY_SETTINGS
@given(rule_lists, st.integers(0, 10), actions, project_ids, requests, principals, st.data())
def test_a_matching_deny_anywhere_wins(
    rule_list: list[CompiledRule],
    position: int,
    action: str,
    project_id: str | None,
    request: RequestFacts,
    principal: Principal,
    data: st.DataObject,
) -> None:
    """Whatever the allows around it, wherever it sits: a deny whose action and scope
    match, and whose condition holds or errors, decides."""
    level = ACTIONS[action].level
    if level == "organization":
        assume(project_id is None)  # in a project it is never granted: no rule decides
        scope, projects = "organization", ()
    else:
        # With no project ("in every project"), a deny listing any project decides too.
        listed = (project_id or data.draw(st.sampled_from(PROJECTS)),)
        scope, projects = ("all_projects", ()) if data.draw(st.booleans()) else ("projects", listed)
    condition = data.draw(st.sampled_from(("", "int(request.user_agent) > 3 || true", "true")))
    deny = _rule(
        "deny",
        data.draw(st.sampled_from(("*", action))),
        scope,
        projects,
        condition,
        data.draw(st.booleans()),
        "Z",
    )
    decision = _decide(
        [*rule_list[:position], deny, *rule_list[position:]], action, project_id, request, principal
    )
    assert not decision.allowed
    assert decision.deciding_rule is not None and decision.deciding_rule.effect == "deny"


# --------------------------------------------------------- owners, unknown actions


@PROPERTY_SETTINGS
@given(rule_lists, actions, project_ids, requests)
def test_owners_are_always_allowed_known_actions(
    rule_list: list[CompiledRule], action: str, project_id: str | None, request: RequestFacts
) -> None:
    owner = Principal(type="user", id="u-0", is_owner=True)
    decision = _decide(rule_list, action, project_id, request, owner)
    assert (decision.allowed, decision.reason) == (True, "owner")


@PROPERTY_SETTINGS
@given(rule_lists, st.sampled_from(("iam:users:lists", "dns:*", "IAMReadOnly", "", "*")))
def test_unknown_actions_are_denied_even_to_owners(
    rule_list: list[CompiledRule], action: str
) -> None:
    request = RequestFacts(ip="10.1.2.3", user_agent="", time=dt.datetime.now(dt.UTC))
    for principal in (USER, Principal(type="user", id="u-0", is_owner=True)):
        decision = _decide(rule_list, action, None, request, principal)
        assert (decision.allowed, decision.reason) == (False, "unknown_action")


# ------------------------------------------------- the index and the memo change nothing


@PROPERTY_SETTINGS
@given(rule_lists, actions, project_ids)
def test_candidates_are_the_rules_whose_action_and_scope_match_in_order(
    rule_list: list[CompiledRule], action: str, project_id: str | None
) -> None:
    level = ACTIONS[action].level
    expected = tuple(
        r for r in rule_list if action in r.actions and r.scope_matches(level, project_id)
    )
    assert CompiledRuleSet(rule_list).candidates(action, project_id) == expected


@PROPERTY_SETTINGS
@given(rule_lists, st.lists(st.tuples(actions, project_ids, requests), min_size=2, max_size=6))
def test_a_reused_rule_set_decides_like_a_fresh_one(
    rule_list: list[CompiledRule],
    asked: list[tuple[str, str | None, RequestFacts]],
) -> None:
    """Decisions memoised by a cached rule set equal those of a rule set never used."""
    shared = CompiledRuleSet(rule_list)
    for action, project_id, request in asked * 2:
        reused = decide(
            principal=USER, rules=shared, action=action, project_id=project_id, request=request
        )
        assert reused == _decide(rule_list, action, project_id, request)


# ------------------------------------------------ the Python fast path of conditions

_STRINGS = ('"10.0.0.0/8"', '"curl"', '"user"', '"u-1"', "'Mozilla'", '""')
_STRING_FIELDS = ("request.ip", "request.user_agent", "principal.type", "principal.id")
_ZONES = ('"UTC"', '"Europe/Paris"', '"+05:30"', '"America/New_York"')


def _expressions() -> st.SearchStrategy[str]:
    """CEL text in (and slightly beyond) the fast path's subset, always bool-typed."""
    string = st.sampled_from(_STRING_FIELDS + _STRINGS)
    accessor = st.sampled_from(("getHours", "getMinutes", "getDayOfWeek", "getDate"))
    integer = st.one_of(
        st.integers(0, 100).map(str),
        st.builds(lambda a, z: f"request.time.{a}({z})", accessor, st.sampled_from(_ZONES)),
    )
    arithmetic = st.one_of(
        integer,
        st.builds(lambda a, op, b: f"{a} {op} {b}", integer, st.sampled_from("+-*"), integer),
    )
    atoms = st.one_of(
        st.sampled_from(("request.mfa", "true", "false", "request.mfa == false")),
        st.builds(lambda a, b: f"ip_in_range({a}, {b})", string, string),
        st.builds(
            lambda a, m, b: f"{a}.{m}({b})",
            string,
            st.sampled_from(("contains", "startsWith", "endsWith")),
            string,
        ),
        st.builds(lambda a, op, b: f"{a} {op} {b}", string, st.sampled_from(("==", "!=")), string),
        st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            arithmetic,
            st.sampled_from(("==", "!=", "<", "<=", ">", ">=")),
            arithmetic,
        ),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            inner.map(lambda e: f"!({e})"),
            st.builds(
                lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(("&&", "||")), inner
            ),
        ),
        max_leaves=5,
    )


def _context(request: RequestFacts, principal: Principal) -> ConditionContext:
    return ConditionContext(
        ip=request.ip,
        user_agent=request.user_agent,
        time=request.time,
        mfa=request.mfa,
        principal_type=principal.type,
        principal_id=principal.id,
    )


@settings(max_examples=300, deadline=None)
@given(_expressions(), requests, principals)
def test_the_fast_path_agrees_with_the_library(
    source: str, request: RequestFacts, principal: Principal
) -> None:
    """When the Python closure answers, it gives the library's answer; when it cannot
    (an error), the evaluator asks the library, so errors keep the library's meaning."""
    try:
        condition = compile_condition(source)
    except ValueError:
        return  # refused on save (e.g. fails on a sample request): never evaluated
    assert condition.fast is not None, source
    context = _context(request, principal)
    fast: bool | None = None
    if condition.fields.isdisjoint(context.invalid):  # else the evaluator skips it
        try:
            fast = condition.fast(context.values)
        except Exception:
            fast = None
    try:
        library: bool | None = condition.evaluate(context)
    except Exception:
        library = None
    if fast is not None:
        assert fast is library, source


def _without_fast_path(rule: CompiledRule) -> CompiledRule:
    if rule.condition is None:
        return rule
    return dataclasses.replace(rule, condition=dataclasses.replace(rule.condition, fast=None))


@PROPERTY_SETTINGS
@given(rule_lists, actions, project_ids, requests, principals)
def test_decisions_are_the_same_without_the_fast_path(
    rule_list: list[CompiledRule],
    action: str,
    project_id: str | None,
    request: RequestFacts,
    principal: Principal,
) -> None:
    # The same rule may be drawn twice: keep one copy per rule, as in the fast list.
    copies = {id(r): _without_fast_path(r) for r in rule_list}
    slow = [copies[id(r)] for r in rule_list]
    fast_decision = _decide(rule_list, action, project_id, request, principal)
    slow_decision = _decide(slow, action, project_id, request, principal)

    def positions(decision: Decision, used: list[CompiledRule]) -> object:
        index = {id(r): n for n, r in enumerate(used)}
        return (
            decision.allowed,
            decision.reason,
            decision.explanation,
            index.get(id(decision.deciding_rule)),
            [index[id(r)] for r in decision.matched_rules],
            [(index[id(r)], message) for r, message in decision.condition_errors],
        )

    assert positions(fast_decision, rule_list) == positions(slow_decision, slow)


def test_conditions_outside_the_subset_have_no_fast_path() -> None:
    for source in (
        'request.user_agent.matches("^curl")',
        'request.ip.ip_in_range("10.0.0.0/8")',
        'request.ip in ["10.1.2.3"]',
        "size(request.user_agent) > 3 // a comment",
        "request.time.getHours() >= 8",  # the native accessor: the library only
        'request.user_agent + "x" == "curlx"',
        'request.user_agent < "m"',
    ):
        assert compile_condition(source).fast is None, source


# ------------------------------------------------------- the cost bound of conditions

# A condition node: (CEL text, whether it holds a macro, whether a macro nests another).
_Node = tuple[str, bool, bool]
_LEAVES = (
    'request.user_agent.startsWith("boom")',
    'request.user_agent.contains("a")',
    r'request.user_agent.matches("^boom[0-9a-z]*(é|\\w)+$")',
    r'request.user_agent.matches("\\w{20}")',  # near the regex budget
    'ip_in_range(request.ip, "2001:db8::/32")',
    'request.time.getHours("Europe/Paris") >= 8',
    "size(request.user_agent + request.user_agent) > 100",
    "request.mfa",
)
# What a macro's body does with its element `v` (one more use per extra `+ v`).
_ELEMENT_TESTS = (
    "request.user_agent.contains(v)",
    'request.user_agent.endsWith(v + "x")',
    "v + v + v + v + v + v != request.user_agent",
    "request.user_agent.matches(v)",  # a computed pattern: refused
)


def _list_literal(size: int) -> str:
    return "[" + ", ".join(f'"{"ab"[i % 2]}{i}"' for i in range(size)) + "]"


def _macro(macro: str, size: int, test: str, body: _Node) -> _Node:
    call = f"{_list_literal(size)}.{macro}(v, ({test}) || ({body[0]}))"
    text = f"{call}.size() >= 0" if macro in ("map", "filter") else call
    return (text, True, body[1] or body[2])


def _chained(macro: str, size: int, body: _Node) -> _Node:
    return (f'{_list_literal(size)}.map(w, w + "x").{macro}(v, {body[0]})', True, True)


def _costly_conditions() -> st.SearchStrategy[_Node]:
    """Conditions of macros, string functions and regexes over request facts, nested or
    not: the shapes of the condition bomb and their neighbours within the bound."""
    macros = st.sampled_from(("exists", "all", "exists_one", "existsOne", "map", "filter"))
    quantifiers = st.sampled_from(("exists", "all", "exists_one"))
    sizes = st.integers(1, 110)
    leaves = st.sampled_from(_LEAVES).map(lambda text: (text, False, False))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(
                lambda a, op, b: (f"({a[0]}) {op} ({b[0]})", a[1] or b[1], a[2] or b[2]),
                inner,
                st.sampled_from(("&&", "||")),
                inner,
            ),
            st.builds(_macro, macros, sizes, st.sampled_from(_ELEMENT_TESTS), inner),
            st.builds(_chained, quantifiers, sizes, inner),
        ),
        max_leaves=6,
    )


adversarial_requests = st.builds(
    RequestFacts,
    ip=st.sampled_from(("2001:db8::1", "::ffff:10.1.2.3", "fe80::1%eth0", "10.1.2.3", "x" * 5000)),
    user_agent=st.one_of(
        st.sampled_from(("boom" + "a" * 100_000, "boom" + "é" * 5000, "boom\ud800", "")),
        st.text(max_size=40).map(lambda text: "boom" + text),
    ),
    time=st.sampled_from((dt.datetime(2025, 3, 4, 10, 0, tzinfo=dt.UTC), *EXTREME_TIMES)),
    mfa=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(_costly_conditions(), adversarial_requests, principals)
def test_accepted_conditions_are_cheap_and_nested_macros_refused(
    node: _Node, request: RequestFacts, principal: Principal
) -> None:
    """Whatever `compile_condition` accepts evaluates in far less than the seconds the
    reported bomb took, on any request; a macro nested in another is always refused. (The
    bound is loose on purpose: this guards against unbounded evaluation, the benchmarks
    measure speed.)"""
    source, _, nested = node
    if nested:
        with pytest.raises(ConditionError):
            compile_condition(source)
        return
    try:
        condition = compile_condition(source)
    except ConditionError:
        return  # another bound (size, pattern) or a failing sample: never evaluated
    unconditional = _rule("allow", "iam:users:list", "organization", (), "", False, "A")
    rule = dataclasses.replace(unconditional, condition=condition, condition_source=source)
    start = time.perf_counter()
    _decide([rule], "iam:users:list", None, request, principal)
    assert time.perf_counter() - start < 1.0, source


# ------------------------------------------------------- resources and tags (#14)

RESOURCE_PROJECTS = ("p1", "p2")
TAG_VALUES = ("web", "db", "")
RESOURCE_ACTIONS = (
    "compute:instances:read",
    "compute:instances:delete",
    "compute:instances:create",
    "storage:buckets:read",
)
SAME_TEAM = 'resource.tags["team"] == principal.tags["team"]'
# Tag tests where a missing tag fails closed (an error: the allow does not apply, the deny
# does), for allows and denies; `"k" in resource.tags` only for allows, where its absence
# also refuses.
DENY_TAG_CONDITIONS = (
    SAME_TEAM,
    'resource.tags["team"] == "web"',
    'resource.tags["env"] != "prod"',
    'resource.tags["env"] == "prod" || request.mfa',
    'principal.tags["team"] == "web"',
)
ALLOW_TAG_CONDITIONS = (
    *DENY_TAG_CONDITIONS,
    '"team" in resource.tags',
    '"team" in resource.tags && resource.tags["team"] != "db"',
)
OTHER_RESOURCE_CONDITIONS = ("", "request.mfa", 'resource.type == "compute:instances"')
RESOURCE_PATTERNS = {
    "all_projects": ("compute:*", "compute:instances:read", "storage:*", "*"),
    "projects": ("compute:instances:*", "storage:buckets:read", "*"),
    "resources": ("compute:instances:read", "compute:instances:*", "storage:*", "*"),
}


@st.composite
def tag_maps(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.sets(st.sampled_from(("team", "env", "owner"))))
    return {key: draw(st.sampled_from((*TAG_VALUES, "prod"))) for key in keys}


@st.composite
def resource_facts(draw: st.DrawFn, registered: bool | None = None) -> ResourceFacts:
    kind = draw(st.sampled_from(("compute:instances", "storage:buckets")))
    index = draw(st.integers(0, 3))
    known = registered if registered is not None else draw(st.integers(0, 5)) > 0
    return ResourceFacts(
        kind,
        f"{kind[0]}-{index}" if known else None,
        RESOURCE_PROJECTS[index % 2],  # an id lives in one project
        draw(tag_maps()),
    )


def _resource_triples(draw: st.DrawFn) -> tuple[tuple[str, str, str], ...]:
    chosen = draw(st.lists(resource_facts(registered=True), min_size=1, max_size=3))
    return tuple(sorted({(r.id or "", r.type, r.project_id) for r in chosen}))


_RESOURCE_RULES: dict[tuple[object, ...], CompiledRule] = {}


@st.composite
def resource_rules(
    draw: st.DrawFn, effect: str | None = None, conditions: Sequence[str] | None = None
) -> CompiledRule:
    scope = draw(st.sampled_from(tuple(RESOURCE_PATTERNS)))
    chosen = effect or draw(st.sampled_from(("allow", "deny")))
    pool = conditions or (
        (ALLOW_TAG_CONDITIONS if chosen == "allow" else DENY_TAG_CONDITIONS)
        + OTHER_RESOURCE_CONDITIONS
    )
    projects: tuple[str, ...] = ()
    triples: tuple[tuple[str, str, str], ...] = ()
    if scope == "projects":
        projects = tuple(sorted(draw(st.sets(st.sampled_from(RESOURCE_PROJECTS), min_size=1))))
    if scope == "resources":
        triples = _resource_triples(draw)
    pattern = draw(st.sampled_from(RESOURCE_PATTERNS[scope]))
    condition = draw(st.sampled_from(pool))
    policy = draw(st.sampled_from(("A", "B", "C")))
    key = (chosen, scope, projects, triples, pattern, condition, policy)
    if key not in _RESOURCE_RULES:
        _RESOURCE_RULES[key] = compile_rule(
            policy_id=f"id-{policy}",
            policy_name=policy,
            rule_index=1,
            effect=chosen,
            actions=[pattern],
            scope=scope,
            project_ids=projects,
            resources=triples,
            condition=condition,
            strict=False,
        )
    return _RESOURCE_RULES[key]


resource_rule_lists = st.lists(resource_rules(), max_size=8)
resource_actions = st.sampled_from(RESOURCE_ACTIONS)
tagged_principals = st.builds(
    lambda kind, tags: Principal(type=kind, id="x-1", tags=tags),
    st.sampled_from(("user", "application")),
    tag_maps(),
)
OFFICE_REQUEST = RequestFacts("10.1.2.3", "Mozilla/5.0", dt.datetime(2025, 3, 4, tzinfo=dt.UTC))


def _on(
    rule_list: Sequence[CompiledRule] | CompiledRuleSet,
    action: str,
    resource: ResourceFacts | None,
    principal: Principal,
    request: RequestFacts = OFFICE_REQUEST,
    project_id: str | None = None,
) -> Decision:
    return decide(
        principal=principal,
        rules=rule_list if isinstance(rule_list, CompiledRuleSet) else CompiledRuleSet(rule_list),
        action=action,
        project_id=project_id,
        request=request,
        resource=resource,
    )


def _type_of(action: str) -> str:
    return action.rsplit(":", 1)[0]


@PROPERTY_SETTINGS
@given(resource_rule_lists, st.data(), resource_actions, tagged_principals, requests)
def test_a_rule_scoped_to_a_resource_never_allows_another(
    rule_list: list[CompiledRule],
    data: st.DataObject,
    action: str,
    principal: Principal,
    request: RequestFacts,
) -> None:
    scoped = data.draw(resource_rules(effect="allow", conditions=("", *ALLOW_TAG_CONDITIONS)))
    assume(isinstance(scoped.scope, ResourceScope))
    assert isinstance(scoped.scope, ResourceScope)
    resource = data.draw(resource_facts().filter(lambda r: r.id not in scoped.scope.by_id))
    position = data.draw(st.integers(0, len(rule_list)))
    with_it = [*rule_list[:position], scoped, *rule_list[position:]]
    decision = _on(with_it, action, resource, principal, request)
    assert scoped not in decision.matched_rules
    assert decision.allowed == _on(rule_list, action, resource, principal, request).allowed
    # Nor the project, nor every project, as a whole.
    for project_id in (resource.project_id, None):
        asked = decide(
            principal=principal,
            rules=CompiledRuleSet(with_it),
            action=action,
            project_id=project_id,
            request=request,
        )
        assert scoped not in asked.matched_rules


@PROPERTY_SETTINGS
@given(
    resource_rule_lists,
    st.sampled_from(('resource.tags["team"] == "web"', SAME_TEAM)),
    st.data(),
    resource_actions,
    requests,
)
def test_a_tag_condition_never_allows_a_resource_whose_tag_differs(
    rule_list: list[CompiledRule],
    condition: str,
    data: st.DataObject,
    action: str,
    request: RequestFacts,
) -> None:
    tagged = data.draw(resource_rules(effect="allow", conditions=(condition,)))
    principal = Principal(type="user", id="u-1", tags={"team": "web"})
    resource = data.draw(resource_facts().filter(lambda r: r.tags.get("team") != "web"))
    with_it = [*rule_list, tagged]
    decision = _on(with_it, action, resource, principal, request)
    assert tagged not in decision.matched_rules
    assert decision.allowed == _on(rule_list, action, resource, principal, request).allowed


@PROPERTY_SETTINGS
@given(resource_rule_lists, resource_facts(), resource_actions, tagged_principals, requests)
def test_removing_a_tag_from_a_resource_never_grants(
    rule_list: list[CompiledRule],
    resource: ResourceFacts,
    action: str,
    principal: Principal,
    request: RequestFacts,
) -> None:
    assume(resource.tags)
    before = _on(rule_list, action, resource, principal, request)
    for key in resource.tags:
        fewer = {k: v for k, v in resource.tags.items() if k != key}
        untagged = dataclasses.replace(resource, tags=fewer)
        after = _on(rule_list, action, untagged, principal, request)
        assert after.allowed <= before.allowed, (key, after.explanation)


@PROPERTY_SETTINGS
@given(resource_rule_lists, resource_actions, st.one_of(st.none(), resource_facts()), principals)
def test_candidates_on_a_resource_are_the_rules_whose_action_and_scope_match(
    rule_list: list[CompiledRule],
    action: str,
    resource: ResourceFacts | None,
    principal: Principal,
) -> None:
    project_id = resource.project_id if resource else "p1"
    expected: tuple[CompiledRule, ...] = ()
    if resource is None or resource.type == _type_of(action):
        expected = tuple(
            r
            for r in rule_list
            if action in r.actions and r.scope_matches("project", project_id, resource, action)
        )
    assert CompiledRuleSet(rule_list).candidates(action, project_id, resource) == expected


@PROPERTY_SETTINGS
@given(
    resource_rule_lists,
    st.lists(
        st.tuples(resource_actions, st.one_of(st.none(), resource_facts()), st.sampled_from(
            (None, "p1", "p2"))),
        min_size=2,
        max_size=8,
    ),
    tagged_principals,
)  # fmt: skip
def test_a_reused_rule_set_decides_on_resources_like_a_fresh_one(
    rule_list: list[CompiledRule],
    asked: list[tuple[str, ResourceFacts | None, str | None]],
    principal: Principal,
) -> None:
    """The memos never serve one resource's decision for another, nor for a project."""
    shared = CompiledRuleSet(rule_list)
    for action, resource, project_id in asked * 2:
        reused = _on(shared, action, resource, principal, project_id=project_id)
        assert reused == _on(rule_list, action, resource, principal, project_id=project_id)


_TAG_REFS = ('resource.tags["team"]', 'principal.tags["team"]', 'resource.tags["env"]')


def _tag_expressions() -> st.SearchStrategy[str]:
    text = st.sampled_from((*_TAG_REFS, '"web"', '"prod"', "resource.type"))
    atoms = st.one_of(
        st.builds(lambda a, op, b: f"{a} {op} {b}", text, st.sampled_from(("==", "!=")), text),
        st.builds(
            lambda k, owner: f"{k} in {owner}.tags",
            st.sampled_from(('"team"', '"env"')),
            st.sampled_from(("resource", "principal")),
        ),
        st.builds(lambda a, b: f"{a}.startsWith({b})", text, text),
        st.just("request.mfa"),
    )
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            inner.map(lambda e: f"!({e})"),
            st.builds(
                lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(("&&", "||")), inner
            ),
        ),
        max_leaves=4,
    )


@settings(max_examples=300, deadline=None)
@given(_tag_expressions(), resource_facts(), tagged_principals, st.booleans())
def test_the_fast_path_agrees_with_the_library_on_tags(
    source: str, resource: ResourceFacts, principal: Principal, mfa: bool
) -> None:
    try:
        condition = compile_condition(source)
    except ValueError:
        return
    assert condition.fast is not None, source
    context = ConditionContext(
        ip="10.1.2.3",
        user_agent="",
        time=dt.datetime(2025, 3, 4, tzinfo=dt.UTC),
        mfa=mfa,
        principal_type=principal.type,
        principal_id=principal.id,
        principal_tags=principal.tags,
        resource=resource,
    )
    context.expect(condition.fields, frozenset())
    try:
        fast: bool | None = condition.fast(context.values)
    except Exception:
        fast = None
    try:
        library: bool | None = condition.evaluate(context)
    except Exception:
        library = None
    if fast is not None:
        assert fast is library, source
