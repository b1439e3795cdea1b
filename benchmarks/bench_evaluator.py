"""What a decision costs: `pytest benchmarks --benchmark-only`.

The rule set is a realistic principal's: three managed policies, a dozen custom policies
over projects and services, and the organization's guardrails, about 50 rules in all.
"""

from __future__ import annotations

import datetime as dt

import pytest

from policies.catalogue import MANAGED_POLICIES
from policies.conditions import compile_condition
from policies.evaluator import (
    CompiledRule,
    CompiledRuleSet,
    Principal,
    RequestFacts,
    compile_managed_policy,
    compile_rule,
    decide,
)

PRINCIPAL = Principal(type="user", id="u-1", label="bob@example.com")
REQUEST = RequestFacts(
    ip="10.1.2.3",
    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    time=dt.datetime(2025, 3, 4, 10, 30, tzinfo=dt.UTC),
    mfa=True,
)
PROJECTS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(12)]


def _custom_rules(with_guardrail_condition: bool) -> list[CompiledRule]:
    specs: list[tuple[str, list[str], str, list[str], str]] = []
    for n, project in enumerate(PROJECTS):
        specs.append(("allow", ["compute:*", "dns:zones:read"], "projects", [project], ""))
        specs.append(("allow", ["storage:buckets:*"], "projects", [project], ""))
        specs.append(("deny", ["compute:instances:delete"], "projects", [project], ""))
        if n % 4 == 0:  # conditional rules on actions the benchmark does not ask about
            specs.append(("allow", ["billing:*"], "organization", [], "request.mfa"))
    specs += [
        ("allow", ["IAMReadOnly"], "organization", [], ""),
        ("allow", ["AuditReader"], "organization", [], ""),
        ("deny", ["iam:policies:delete"], "organization", [], ""),
    ]
    rules = [
        compile_rule(
            policy_id=f"policy-{index}",
            policy_name=f"Team {index}",
            rule_index=1,
            effect=effect,
            actions=actions,
            scope=scope,
            project_ids=projects,
            condition=condition,
        )
        for index, (effect, actions, scope, projects, condition) in enumerate(specs)
    ]
    # The guardrail: everyone outside the office network is denied every project action
    # (a conditional rule that survives), or, without it, nobody edits the billing contact.
    if with_guardrail_condition:
        guard = ("*", "all_projects", '!ip_in_range(request.ip, "10.0.0.0/8")')
    else:
        guard = ("billing:contact:update", "organization", "")
    rules.append(
        compile_rule(
            policy_id="guardrails",
            policy_name="Organization guardrails",
            rule_index=1,
            effect="deny",
            actions=[guard[0]],
            scope=guard[1],
            condition=guard[2],
            is_guardrail=True,
        )
    )
    return rules


def _rule_set(with_guardrail_condition: bool) -> CompiledRuleSet:
    rules: list[CompiledRule] = []
    for name in ("ReadOnlyAccess", "IAMReadOnly", "BillingReadOnly"):
        rules += compile_managed_policy(MANAGED_POLICIES[name], policy_id=f"managed:{name}")
    rules += _custom_rules(with_guardrail_condition)
    assert 45 <= len(rules) <= 60
    return CompiledRuleSet(rules)


@pytest.fixture(scope="module")
def plain_rules() -> CompiledRuleSet:
    return _rule_set(with_guardrail_condition=False)


@pytest.fixture(scope="module")
def guarded_rules() -> CompiledRuleSet:
    return _rule_set(with_guardrail_condition=True)


def test_decide_without_conditional_rule(benchmark, plain_rules: CompiledRuleSet) -> None:
    def run() -> object:
        return decide(
            principal=PRINCIPAL,
            rules=plain_rules,
            action="compute:instances:create",
            project_id=PROJECTS[5],
            request=REQUEST,
        )

    decision = benchmark(run)
    assert decision.allowed
    assert all(rule.condition is None for rule in decision.matched_rules)


def test_decide_with_surviving_conditional_rule(benchmark, guarded_rules: CompiledRuleSet) -> None:
    def run() -> object:
        return decide(
            principal=PRINCIPAL,
            rules=guarded_rules,
            action="compute:instances:create",
            project_id=PROJECTS[5],
            request=REQUEST,
        )

    decision = benchmark(run)
    assert decision.allowed  # the guardrail's condition is evaluated (and false)
    assert decision.reason == "explicit_allow"


def test_decide_implicit_deny(benchmark, plain_rules: CompiledRuleSet) -> None:
    def run() -> object:
        return decide(
            principal=PRINCIPAL,
            rules=plain_rules,
            action="iam:users:invite",
            project_id=None,
            request=REQUEST,
        )

    assert not benchmark(run).allowed


def test_compile_condition(benchmark) -> None:
    source = (
        'ip_in_range(request.ip, "10.0.0.0/8") && request.mfa'
        ' && request.time.getHours("Europe/Paris") >= 8'
    )
    condition = benchmark(compile_condition, source)
    assert condition.fields == {"request.ip", "request.mfa", "request.time"}


def test_compile_rule_set_of_about_50_rules(benchmark) -> None:
    """A cache miss: what the Django side pays once per principal and version."""
    ruleset = benchmark(_rule_set, True)
    assert len(ruleset) >= 45
