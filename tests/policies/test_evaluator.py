"""The decision function: semantics, explanations, fail-closed conditions, performance shape."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import evaluator
from policies.catalogue import ACTIONS, MANAGED_POLICIES, ActionScopeError, UnknownActionError
from policies.conditions.compiler import CompiledCondition, ConditionContext, ConditionError
from policies.effective import effective_permissions
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Principal,
    RequestFacts,
    RuleError,
    compile_managed_policy,
    compile_rule,
    decide,
    describe_scope,
)

USER = Principal(type="user", id="u-1", label="bob@example.com")
OWNER = Principal(type="user", id="u-0", is_owner=True, label="ann@example.com")
NOW = dt.datetime(2025, 3, 4, 10, 0, tzinfo=dt.UTC)
OFFICE = RequestFacts(ip="10.1.2.3", user_agent="Mozilla/5.0", time=NOW, mfa=True)
CAFE = RequestFacts(ip="203.0.113.9", user_agent="Mozilla/5.0", time=NOW, mfa=False)
BROKEN_IP = RequestFacts(ip="", user_agent="curl", time=NOW, mfa=False)
IN_OFFICE = 'ip_in_range(request.ip, "10.0.0.0/8")'


def rule(
    effect: str,
    actions: Sequence[str],
    scope: str = "organization",
    *,
    projects: Sequence[str] = (),
    condition: str = "",
    policy: str = "P",
    index: int = 1,
    guardrail: bool = False,
) -> CompiledRule:
    return compile_rule(
        policy_id=f"id-{policy}",
        policy_name=policy,
        rule_index=index,
        effect=effect,
        actions=actions,
        scope=scope,
        project_ids=projects,
        condition=condition,
        is_guardrail=guardrail,
    )


def check(
    rules: Sequence[CompiledRule],
    action: str,
    project_id: str | None = None,
    *,
    principal: Principal = USER,
    request: RequestFacts = OFFICE,
) -> evaluator.Decision:
    return decide(
        principal=principal,
        rules=CompiledRuleSet(rules),
        action=action,
        project_id=project_id,
        request=request,
    )


# ------------------------------------------------------------------ who, before rules


def test_owner_is_allowed_without_any_rule() -> None:
    decision = check([], "billing:contact:update", principal=OWNER)
    assert decision.allowed
    assert decision.reason == "owner"
    assert decision.explanation == "allowed: owners have full access"


def test_guardrails_do_not_apply_to_owners() -> None:
    guard = rule("deny", ["*"], guardrail=True, policy="Organization guardrails")
    assert check([guard], "iam:users:list", principal=OWNER).allowed


def test_inactive_principal_is_denied_whatever_its_rules() -> None:
    suspended = Principal(type="user", id="u-1", is_active=False, label="bob@example.com")
    decision = check([rule("allow", ["iam:*"])], "iam:users:list", principal=suspended)
    assert not decision.allowed
    assert decision.reason == "inactive"
    assert decision.explanation == "denied: bob@example.com is suspended or removed"


def test_suspended_owner_is_denied() -> None:
    suspended_owner = Principal(type="user", id="u-0", is_owner=True, is_active=False)
    decision = check([], "iam:users:list", principal=suspended_owner)
    assert (decision.allowed, decision.reason) == (False, "inactive")


def test_unknown_action_is_denied_even_for_an_owner() -> None:
    decision = check([rule("allow", ["*"])], "iam:userz:list", principal=OWNER)
    assert (decision.allowed, decision.reason) == (False, "unknown_action")
    assert "iam:userz:list" in decision.explanation


def test_principal_type_is_checked() -> None:
    with pytest.raises(ValueError):
        Principal(type="robot", id="x")  # type: ignore[arg-type]


def test_request_time_must_be_aware() -> None:
    with pytest.raises(ValueError):
        RequestFacts(ip="", user_agent="", time=dt.datetime(2025, 1, 1))  # naive on purpose


# ----------------------------------------------------------------------- explanations


def test_allow_names_the_rule_and_policy() -> None:
    rules = [
        rule("allow", ["dns:*"], "all_projects", policy="ProjectA-devs", index=1),
        rule("allow", ["compute:*"], "all_projects", policy="ProjectA-devs", index=2),
    ]
    decision = check(rules, "compute:instances:create", "p1")
    assert decision.allowed
    assert decision.reason == "explicit_allow"
    assert decision.explanation == "allowed by rule 2 of policy ProjectA-devs"
    assert decision.deciding_rule is rules[1]
    assert decision.missing_action is None


def test_implicit_deny_names_the_missing_action() -> None:
    decision = check([rule("allow", ["IAMReadOnly"])], "billing:invoices:read")
    assert not decision.allowed
    assert decision.reason == "implicit_deny"
    assert decision.explanation == "denied: no policy grants billing:invoices:read"
    assert decision.missing_action == "billing:invoices:read"
    assert decision.deciding_rule is None
    assert decision.effect == "deny"


def test_guardrail_denial_says_so() -> None:
    rules = [
        rule("allow", ["billing:*"], policy="Billing"),
        rule("deny", ["billing:*"], guardrail=True, policy="Organization guardrails"),
    ]
    decision = check(rules, "billing:invoices:read")
    assert decision.reason == "explicit_deny"
    assert decision.explanation == "denied by guardrail rule 1 of policy Organization guardrails"
    assert decision.is_guardrail


def test_a_guardrail_is_named_before_another_deny() -> None:
    rules = [
        rule("deny", ["iam:*"], policy="Team"),
        rule("deny", ["iam:*"], policy="Organization guardrails", guardrail=True),
    ]
    assert check(rules, "iam:users:list").deciding_rule is rules[1]


def test_first_matching_allow_in_rule_order_is_named() -> None:
    first, second = rule("allow", ["iam:*"], policy="A"), rule("allow", ["IAMReadOnly"], policy="B")
    assert check([first, second], "iam:users:list").deciding_rule is first
    assert check([second, first], "iam:users:list").deciding_rule is second


def test_decision_lists_every_matched_rule() -> None:
    rules = [
        rule("allow", ["iam:*"], policy="A"),
        rule("allow", ["billing:*"], policy="B"),
        rule("allow", ["IAMReadOnly"], policy="C"),
        rule("allow", ["iam:users:list"], policy="D", condition="!request.mfa"),
    ]
    decision = check(rules, "iam:users:list")
    assert decision.matched_rules == (rules[0], rules[2])


def test_implicit_deny_mentions_allow_rules_whose_condition_did_not_hold() -> None:
    rules = [rule("allow", ["billing:*"], policy="Office", index=3, condition=IN_OFFICE)]
    decision = check(rules, "billing:invoices:list", request=CAFE)
    assert decision.explanation == (
        "denied: no policy grants billing:invoices:list; "
        "rule 3 of policy Office grants it only when its condition holds: "
        "the request's address 203.0.113.9 is not in 10.0.0.0/8"
    )
    [report] = decision.condition_reports
    assert report.rule is rules[0]
    assert [part.words for part in report.parts] == [
        "your address 203.0.113.9 is not in 10.0.0.0/8"
    ]


def test_implicit_deny_shows_an_unknown_condition_with_the_values_it_reads() -> None:
    source = 'request.ip == "10.1.2.3" || request.user_agent.matches("^corp")'
    rules = [rule("allow", ["iam:users:list"], policy="Office", condition=source)]
    decision = check(rules, "iam:users:list", request=CAFE)
    assert decision.explanation.endswith(
        f"grants it only when its condition holds: {source} is false for "
        'request.ip = 203.0.113.9, request.user_agent = "Mozilla/5.0"'
    )


def test_a_conditional_deny_says_what_made_it_apply() -> None:
    rules = [
        rule("allow", ["iam:*"]),
        rule("deny", ["*"], condition=f"!{IN_OFFICE}", policy="Guard", guardrail=True),
    ]
    decision = check(rules, "iam:users:list", request=CAFE)
    assert decision.explanation == (
        "denied by guardrail rule 1 of policy Guard, "
        "as the request's address 203.0.113.9 is not in 10.0.0.0/8"
    )
    assert decision.condition_reports[0].parts[0].words == (
        "your address 203.0.113.9 is not in 10.0.0.0/8"
    )


def test_allowed_and_unconditional_decisions_carry_no_condition_report() -> None:
    office_only = rule("allow", ["iam:users:list"], condition=IN_OFFICE)
    assert check([office_only], "iam:users:list", request=OFFICE).condition_reports == ()
    assert check([rule("deny", ["iam:*"])], "iam:users:list").condition_reports == ()
    assert check([], "iam:users:list").condition_reports == ()


# ----------------------------------------------------------------------------- effect


def test_deny_wins_over_allow() -> None:
    allow = rule("allow", ["compute:*"], "all_projects", policy="Devs")
    deny = rule("deny", ["compute:instances:delete"], "projects", projects=["p1"], policy="Prod")
    for rules in ([allow, deny], [deny, allow]):
        decision = check(rules, "compute:instances:delete", "p1")
        assert (decision.allowed, decision.reason) == (False, "explicit_deny")
        assert decision.explanation == "denied by rule 1 of policy Prod"
        assert decision.matched_rules == tuple(rules)
    assert check([allow, deny], "compute:instances:delete", "p2").allowed


# ------------------------------------------------------------------------------ scope


def test_organization_action_needs_an_organization_rule_and_no_project() -> None:
    rules = [rule("allow", ["billing:invoices:read"])]
    assert check(rules, "billing:invoices:read").allowed
    in_project = check(rules, "billing:invoices:read", "p1")
    assert not in_project.allowed
    assert "organization-level action" in in_project.explanation


def test_project_action_matches_all_projects_rules() -> None:
    rules = [rule("allow", ["dns:zones:read"], "all_projects")]
    assert check(rules, "dns:zones:read", "p1").allowed
    assert check(rules, "dns:zones:read", "p2").allowed


def test_project_action_matches_only_the_listed_projects() -> None:
    rules = [rule("allow", ["dns:zones:read"], "projects", projects=["p1", "p2"])]
    assert check(rules, "dns:zones:read", "p1").allowed
    assert check(rules, "dns:zones:read", "p2").allowed
    denied = check(rules, "dns:zones:read", "p3")
    assert not denied.allowed
    assert denied.explanation == "denied: no policy grants dns:zones:read in this project"


def test_project_action_in_every_project_needs_an_all_projects_allow() -> None:
    listed = [rule("allow", ["dns:zones:list"], "projects", projects=["p1"])]
    everywhere = [rule("allow", ["dns:zones:list"], "all_projects")]
    assert not check(listed, "dns:zones:list", None).allowed
    assert check(everywhere, "dns:zones:list", None).allowed
    assert "in every project" in check(listed, "dns:zones:list", None).explanation


def test_a_deny_in_one_project_denies_in_every_project() -> None:
    rules = [
        rule("allow", ["compute:instances:list"], "all_projects", policy="Devs"),
        rule("deny", ["compute:instances:list"], "projects", projects=["A"], policy="NoProd"),
    ]
    everywhere = check(rules, "compute:instances:list", None)
    assert (everywhere.allowed, everywhere.reason) == (False, "explicit_deny")
    assert everywhere.explanation == (
        "denied by rule 1 of policy NoProd, which denies it in project A"
    )
    assert check(rules, "compute:instances:list", "B").allowed
    in_a = check(rules, "compute:instances:list", "A")
    assert (in_a.allowed, in_a.explanation) == (False, "denied by rule 1 of policy NoProd")


def test_deny_on_one_project_does_not_deny_elsewhere() -> None:
    rules = [
        rule("allow", ["AllProductsFullAccess"], "all_projects"),
        rule("deny", ["storage:*"], "projects", projects=["prod"]),
    ]
    assert not check(rules, "storage:buckets:delete", "prod").allowed
    assert check(rules, "storage:buckets:delete", "staging").allowed


# ------------------------------------------------------------------------- conditions


def test_allow_with_a_true_condition_matches() -> None:
    rules = [rule("allow", ["iam:users:list"], condition=IN_OFFICE)]
    assert check(rules, "iam:users:list", request=OFFICE).allowed
    assert not check(rules, "iam:users:list", request=CAFE).allowed


def test_condition_sees_the_principal() -> None:
    rules = [rule("allow", ["iam:users:list"], condition='principal.type == "application"')]
    app = Principal(type="application", id="a-1")
    assert check(rules, "iam:users:list", principal=app).allowed
    assert not check(rules, "iam:users:list").allowed


def test_condition_error_fails_closed_for_allow() -> None:
    rules = [rule("allow", ["iam:users:list"], condition=IN_OFFICE, policy="Office")]
    decision = check(rules, "iam:users:list", request=BROKEN_IP)
    assert not decision.allowed
    assert decision.reason == "implicit_deny"
    assert decision.matched_rules == ()
    assert decision.condition_errors[0][0] is rules[0]
    assert "condition failed" in decision.explanation


def test_condition_error_makes_a_deny_match() -> None:
    rules = [
        rule("allow", ["iam:*"]),
        rule("deny", ["*"], condition=f"!{IN_OFFICE}", policy="Guard", guardrail=True),
    ]
    decision = check(rules, "iam:users:list", request=BROKEN_IP)
    assert (decision.allowed, decision.reason) == (False, "explicit_deny")
    assert decision.explanation.startswith(
        "denied by guardrail rule 1 of policy Guard (its condition could not be evaluated:"
    )
    assert check(rules, "iam:users:list", request=OFFICE).allowed


# Conditions reading the user agent and the time, with and without a Python fast path.
_UA_CONDITIONS = ('request.user_agent.contains("curl")', 'request.user_agent.matches("^curl")')
_TIME_CONDITIONS = (
    'request.time.getHours("America/New_York") >= 0',
    "request.time.getHours() >= 0",
    'request.time > timestamp("2000-01-01T00:00:00Z")',
)
_PLUS_5, _MINUS_5 = (dt.timezone(dt.timedelta(hours=hours)) for hours in (5, -5))
_EXTREME_TIMES = (
    dt.datetime.max.replace(tzinfo=dt.UTC),
    dt.datetime.min.replace(tzinfo=dt.UTC),
    dt.datetime.min.replace(tzinfo=_PLUS_5),  # before the first UTC instant
    dt.datetime.max.replace(tzinfo=_MINUS_5),  # after the last one
)


def _fails_closed(condition: str, request: RequestFacts) -> list[evaluator.Decision]:
    """The decisions of an allow rule and of a deny rule with `condition`, checked to fail
    closed if the condition errors."""
    decisions = []
    for effect in ("allow", "deny"):
        decision = check(
            [rule(effect, ["iam:users:list"], condition=condition)],
            "iam:users:list",
            request=request,
        )
        if decision.condition_errors:
            assert not decision.allowed
            expected = "explicit_deny" if effect == "deny" else "implicit_deny"
            assert decision.reason == expected
        decisions.append(decision)
    return decisions


def test_ua_and_time_conditions_cover_both_evaluation_paths() -> None:
    for conditions in (_UA_CONDITIONS, _TIME_CONDITIONS):
        paths = {rule("allow", ["iam:*"], condition=c).condition.fast is None for c in conditions}
        assert paths == {True, False}


@pytest.mark.parametrize("condition", _UA_CONDITIONS)
def test_a_lone_surrogate_in_the_user_agent_fails_closed(condition: str) -> None:
    request = RequestFacts(ip="10.1.2.3", user_agent="curl\ud800", time=NOW)
    for decision in _fails_closed(condition, request):
        assert [message for _, message in decision.condition_errors] == [
            "request.user_agent is not valid text"
        ]


def test_conditions_not_reading_an_invalid_fact_still_hold() -> None:
    rules = [
        rule("allow", ["iam:users:list"], condition=_UA_CONDITIONS[1], policy="Curl"),
        rule("allow", ["iam:users:list"], condition=IN_OFFICE, policy="Office"),
    ]
    request = RequestFacts(ip="10.1.2.3", user_agent="curl\udfff", time=NOW)
    decision = check(rules, "iam:users:list", request=request)
    assert decision.allowed and decision.deciding_rule is rules[1]
    assert [r for r, _ in decision.condition_errors] == [rules[0]]


@pytest.mark.parametrize("time", _EXTREME_TIMES)
@pytest.mark.parametrize("condition", _TIME_CONDITIONS)
def test_extreme_request_times_never_raise_and_fail_closed(
    condition: str, time: dt.datetime
) -> None:
    decisions = _fails_closed(condition, RequestFacts(ip="10.1.2.3", user_agent="", time=time))
    if time.utcoffset():  # beyond UTC's range: no condition reading the time can hold
        for decision in decisions:
            assert [m for _, m in decision.condition_errors] == ["request.time is out of range"]


def test_any_error_of_a_condition_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a condition raises (the library, the fast path, a bug), decide() fails
    closed instead of raising."""

    def explode(*args: object) -> bool:
        raise RecursionError("too deep")

    def exploding(effect: str, condition: str) -> CompiledRule:
        compiled = rule(effect, ["iam:users:list"], condition=condition)
        assert compiled.condition is not None
        return dataclasses.replace(
            compiled, condition=dataclasses.replace(compiled.condition, fast=explode)
        )

    rules = [exploding("allow", "request.mfa"), exploding("allow", "size(request.ip) > 0")]
    deny = exploding("deny", "!request.mfa")
    monkeypatch.setattr(CompiledCondition, "evaluate", explode)
    decision = check(rules, "iam:users:list")
    assert (decision.allowed, decision.reason) == (False, "implicit_deny")
    assert [message for _, message in decision.condition_errors] == ["too deep", "too deep"]
    assert check([rule("allow", ["iam:*"]), deny], "iam:users:list").reason == "explicit_deny"


class CountingContext(ConditionContext):
    created = 0

    def __init__(self, **kwargs: object) -> None:
        CountingContext.created += 1
        super().__init__(**kwargs)  # type: ignore[arg-type]


@pytest.fixture
def counting_context(monkeypatch: pytest.MonkeyPatch) -> type[CountingContext]:
    CountingContext.created = 0
    monkeypatch.setattr(evaluator, "ConditionContext", CountingContext)
    return CountingContext


def test_no_condition_context_when_no_conditional_rule_survives(
    counting_context: type[CountingContext],
) -> None:
    rules = [
        rule("allow", ["iam:*"]),
        rule("allow", ["billing:*"], condition="request.mfa"),  # other action
        rule("allow", ["dns:*"], "projects", projects=["p9"], condition="request.mfa"),  # scope
    ]
    assert check(rules, "iam:users:list").allowed
    assert not check(rules, "dns:zones:read", "p1").allowed
    assert counting_context.created == 0


def test_condition_context_is_built_once_per_decision(
    counting_context: type[CountingContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    original = CountingContext._build

    def spy(self: ConditionContext, *args: object) -> None:
        before = self.builds
        original(self, *args)  # type: ignore[arg-type]
        builds.append(self.builds - before)

    monkeypatch.setattr(CountingContext, "_build", spy)
    # The first two have no Python fast path: both need the library, one activation.
    rules = [
        rule("allow", ["iam:users:list"], condition='!request.user_agent.matches("^curl")'),
        rule("allow", ["iam:*"], condition='request.ip.ip_in_range("10.0.0.0/8")'),
        rule("deny", ["iam:*"], condition='principal.id == "nobody"'),
    ]
    assert check(rules, "iam:users:list").allowed
    assert counting_context.created == 1
    assert sum(builds) == 1


def test_fast_path_conditions_build_no_activation(
    counting_context: type[CountingContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    monkeypatch.setattr(CountingContext, "_build", lambda self, *args: builds.append(1))
    rules = [
        rule("allow", ["iam:users:list"], condition="request.mfa"),
        rule("allow", ["iam:*"], condition=IN_OFFICE),
        rule("deny", ["iam:*"], condition='principal.id == "nobody"'),
    ]
    assert check(rules, "iam:users:list").allowed
    assert counting_context.created == 1
    assert builds == []


# ----------------------------------------------------------------------- rule sets


def test_rule_set_indexes_rules_by_action() -> None:
    iam, billing = rule("allow", ["iam:*"]), rule("allow", ["billing:*"])
    ruleset = CompiledRuleSet([iam, billing])
    assert ruleset.for_action("iam:users:list") == (iam,)
    assert ruleset.for_action("compute:instances:read") == ()
    assert len(ruleset) == 2
    assert list(ruleset) == [iam, billing]


def test_decide_accepts_a_plain_list_of_rules() -> None:
    decision = decide(
        principal=USER,
        rules=[rule("allow", ["iam:*"])],
        action="iam:users:list",
        project_id=None,
        request=OFFICE,
    )
    assert decision.allowed


def test_empty_rule_set_denies() -> None:
    decision = decide(
        principal=USER,
        rules=CompiledRuleSet.empty(),
        action="iam:users:list",
        project_id=None,
        request=OFFICE,
    )
    assert decision.reason == "implicit_deny"


def test_managed_policy_compiles_to_one_rule_per_scope() -> None:
    rules = compile_managed_policy(MANAGED_POLICIES["TechAccess"], policy_id="managed:tech")
    assert [r.scope for r in rules] == ["organization", "all_projects"]
    assert check(rules, "compute:instances:create", "p1").allowed
    assert check(rules, "projects:projects:create").allowed
    assert not check(rules, "billing:invoices:list").allowed
    assert not check(rules, "iam:users:invite").allowed


# ------------------------------------------------------------------------ compile_rule


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"effect": "maybe"}, RuleError),
        ({"scope": "everywhere"}, RuleError),
        ({"scope": "projects", "actions": ["dns:*"]}, RuleError),  # no project chosen
        ({"effect": "allow", "is_guardrail": True}, RuleError),
        ({"actions": ["iam:userz:list"]}, UnknownActionError),
        ({"actions": ["dns:zones:read"]}, ActionScopeError),
        ({"condition": "request.ip =="}, ConditionError),
    ],
)
def test_compile_rule_refuses_invalid_rules(kwargs: dict[str, object], error: type) -> None:
    base: dict[str, object] = {
        "policy_id": "x",
        "policy_name": "X",
        "rule_index": 1,
        "effect": "deny",
        "actions": ["iam:*"],
        "scope": "organization",
    }
    with pytest.raises(error):
        compile_rule(**{**base, **kwargs})  # type: ignore[arg-type]


def test_compile_rule_keeps_condition_source_and_projects() -> None:
    compiled = rule(
        "allow", ["dns:*"], "projects", projects=["p1", "p2"], condition=" request.mfa "
    )
    assert compiled.scope == frozenset({"p1", "p2"})
    assert compiled.condition_source == "request.mfa"
    assert compiled.actions == {n for n in ACTIONS if n.startswith("dns:")}


def test_lenient_compile_drops_what_can_no_longer_match() -> None:
    compiled = compile_rule(
        policy_id="x",
        policy_name="X",
        rule_index=1,
        effect="allow",
        actions=["iam:users:list", "iam:retired:list", "dns:zones:read"],
        scope="organization",
        strict=False,
    )
    assert compiled.actions == {"iam:users:list"}


def test_lenient_compile_turns_a_broken_condition_into_fail_closed() -> None:
    def stored(effect: str) -> CompiledRule:
        return compile_rule(
            policy_id="x",
            policy_name="X",
            rule_index=1,
            effect=effect,
            actions=["iam:*"],
            scope="organization",
            condition="request.retired_field == 1",
            strict=False,
        )

    assert not check([stored("allow")], "iam:users:list").allowed
    assert check([rule("allow", ["iam:*"]), stored("deny")], "iam:users:list").reason == (
        "explicit_deny"
    )


def test_lenient_compile_keeps_an_allow_guardrail_inert() -> None:
    compiled = compile_rule(
        policy_id="g",
        policy_name="G",
        rule_index=1,
        effect="allow",
        actions=["*"],
        scope="organization",
        is_guardrail=True,
        strict=False,
    )
    assert not check([compiled], "iam:users:list").allowed


# ---------------------------------------------------------------- effective permissions


def test_effective_permissions_of_an_owner_are_every_action() -> None:
    permissions = effective_permissions(OWNER, [])
    assert {p.action for p in permissions} == set(ACTIONS)
    assert {p.via for p in permissions} == {"owner"}


def test_effective_permissions_of_an_inactive_principal_are_none() -> None:
    suspended = Principal(type="user", id="u", is_active=False)
    assert effective_permissions(suspended, [rule("allow", ["*"])]) == []


def test_effective_permissions_distinguish_conditional_grants_and_drop_denied_ones() -> None:
    rules = [
        rule("allow", ["billing:invoices:list"], policy="Billing"),
        rule(
            "allow", ["billing:invoices:read"], policy="Billing", index=2, condition="request.mfa"
        ),
        rule("allow", ["dns:zones:read"], "projects", projects=["p1"], policy="Dns"),
        rule("allow", ["storage:buckets:read"], "all_projects", policy="Storage"),
        rule("deny", ["billing:invoices:list"], policy="Guard", guardrail=True),
        rule("deny", ["storage:*"], "projects", projects=["prod"], policy="Prod"),
    ]
    permissions = {
        p.action: p for p in effective_permissions(USER, rules, project_names={"p1": "Website"})
    }
    assert "billing:invoices:list" not in permissions
    assert permissions["billing:invoices:read"].conditional
    assert permissions["billing:invoices:read"].condition == "request.mfa"
    assert permissions["dns:zones:read"].scope == "project Website"
    assert not permissions["dns:zones:read"].conditional
    assert permissions["storage:buckets:read"].limited_by == ("rule 1 of policy Prod",)


def test_describe_scope() -> None:
    assert describe_scope("organization") == "organization"
    assert describe_scope("all_projects") == "all projects"
    assert describe_scope(frozenset({"b", "a"}), {"a": "Alpha"}) == "projects Alpha, b"


# ------------------------------------------------------------------------- properties

_CONDITIONS = ["", "request.mfa", "!request.mfa", IN_OFFICE, f"!{IN_OFFICE}"]
_REQUESTS = [OFFICE, CAFE, BROKEN_IP]
_ACTION_NAMES = ["iam:users:list", "billing:invoices:read", "dns:zones:read", "dns:zones:delete"]
_PATTERNS_BY_SCOPE = {
    "organization": ["iam:users:list", "IAMReadOnly", "billing:*", "*"],
    "all_projects": ["dns:zones:read", "DNSFullAccess", "dns:*", "*"],
    "projects": ["dns:zones:read", "DNSReadOnly", "dns:zones:*"],
}
_COMPILED: dict[tuple[object, ...], CompiledRule] = {}


def _cached_rule(
    effect: str, pattern: str, scope: str, projects: tuple[str, ...], cond: str
) -> CompiledRule:
    key = (effect, pattern, scope, projects, cond)
    if key not in _COMPILED:  # compiling CEL per example would dominate the test's time
        _COMPILED[key] = rule(effect, [pattern], scope, projects=projects, condition=cond)
    return _COMPILED[key]


@st.composite
def rules_strategy(draw: st.DrawFn) -> CompiledRule:
    scope = draw(st.sampled_from(sorted(_PATTERNS_BY_SCOPE)))
    projects = ("p1",) if scope == "projects" else ()
    return _cached_rule(
        draw(st.sampled_from(["allow", "deny"])),
        draw(st.sampled_from(_PATTERNS_BY_SCOPE[scope])),
        scope,
        projects,
        draw(st.sampled_from(_CONDITIONS)),
    )


def _reference(
    rules: list[CompiledRule], action: str, project: str | None, request: RequestFacts
) -> bool:
    """The spec read literally, rule by rule, without the index."""
    level = ACTIONS[action].level
    matched = {"allow": False, "deny": False}
    for r in rules:
        if action not in r.actions:
            continue
        if level == "organization" and not (r.scope == "organization" and project is None):
            continue
        if level == "project" and not (
            r.scope == "all_projects"
            or (project is not None and project in r.scope)
            # "In every project": a deny in any project takes it back.
            or (project is None and r.effect == "deny" and isinstance(r.scope, frozenset))
        ):
            continue
        if r.condition is not None:
            context = ConditionContext(
                ip=request.ip,
                user_agent=request.user_agent,
                time=request.time,
                mfa=request.mfa,
                principal_type="user",
                principal_id="u-1",
            )
            try:
                if not r.condition.evaluate(context):
                    continue
            except Exception:
                if r.effect == "allow":
                    continue
        matched[r.effect] = True
    return matched["allow"] and not matched["deny"]


_DECISION_INPUTS = {
    "rules": st.lists(rules_strategy(), max_size=8),
    "action": st.sampled_from(_ACTION_NAMES),
    "project": st.sampled_from([None, "p1", "p2"]),
    "request": st.sampled_from(_REQUESTS),
}


@given(**_DECISION_INPUTS)
def test_decide_agrees_with_the_literal_reading_of_the_rules(
    rules: list[CompiledRule], action: str, project: str | None, request: RequestFacts
) -> None:
    decision = check(rules, action, project, request=request)
    assert decision.allowed is _reference(rules, action, project, request)
    assert decision.allowed is (decision.reason == "explicit_allow")


@given(**_DECISION_INPUTS)
def test_deny_always_wins_over_allow(
    rules: list[CompiledRule], action: str, project: str | None, request: RequestFacts
) -> None:
    scope = "organization" if ACTIONS[action].level == "organization" else "all_projects"
    deny = rule("deny", [action], scope)
    for position in (0, len(rules)):
        with_deny = [*rules[:position], deny, *rules[position:]]
        decision = check(with_deny, action, project, request=request)
        assert not decision.allowed
        if project is None or scope == "all_projects":
            assert decision.reason == "explicit_deny"


@given(**_DECISION_INPUTS)
def test_condition_errors_never_make_an_allow_match(
    rules: list[CompiledRule], action: str, project: str | None, request: RequestFacts
) -> None:
    decision = check(rules, action, project, request=BROKEN_IP)
    erroring = {id(r) for r, _ in decision.condition_errors}
    assert all(r.effect == "deny" for r in decision.matched_rules if id(r) in erroring)
    if decision.allowed:
        assert decision.deciding_rule is not None
        assert id(decision.deciding_rule) not in erroring
        # Only unconditional or ip-free conditions can allow on a broken address.
        assert "ip_in_range" not in decision.deciding_rule.condition_source
