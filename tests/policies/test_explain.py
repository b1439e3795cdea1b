"""Conditions in words: the parts of the builder's conditions, judged on a request."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from policies.conditions.builder import build_condition
from policies.conditions.compiler import ConditionContext
from policies.evaluator import CompiledRule, compile_rule
from policies.explain import ConditionReport, report_condition

# 21:14 UTC is 22:14 in Paris (winter time).
EVENING = dt.datetime(2025, 3, 4, 21, 14, tzinfo=dt.UTC)


def _rule(condition: str, effect: str = "allow") -> CompiledRule:
    return compile_rule(
        policy_id="p",
        policy_name="Office",
        rule_index=1,
        effect=effect,
        actions=["iam:users:list"],
        scope="organization",
        condition=condition,
    )


def _report(
    condition: str,
    *,
    effect: str = "allow",
    ip: str = "203.0.113.5",
    user_agent: str = "Mozilla/5.0",
    time: dt.datetime = EVENING,
    mfa: bool = False,
) -> ConditionReport:
    context = ConditionContext(
        ip=ip, user_agent=user_agent, time=time, mfa=mfa, principal_type="user", principal_id="u"
    )
    return report_condition(_rule(condition, effect), context.values)


def _words(report: ConditionReport) -> list[str]:
    return [part.words for part in report.parts]


def test_an_ip_range_names_the_request_address() -> None:
    report = _report(build_condition(ip_ranges=["10.0.0.0/8"]))
    assert _words(report) == ["your address 203.0.113.5 is not in 10.0.0.0/8"]
    assert report.parts[0].neutral == "the request's address 203.0.113.5 is not in 10.0.0.0/8"
    assert report.parts[0].advice.startswith("connect from an address in 10.0.0.0/8")


def test_several_ip_ranges_are_one_part() -> None:
    report = _report(build_condition(ip_ranges=["10.0.0.0/8", "192.168.0.0/16"]))
    assert _words(report) == ["your address 203.0.113.5 is not in 10.0.0.0/8 or 192.168.0.0/16"]


def test_missing_mfa() -> None:
    report = _report(build_condition(require_mfa=True))
    assert _words(report) == ["you signed in without two-step verification"]
    assert report.parts[0].advice == "sign in with two-step verification"


def test_a_time_window_in_a_zone() -> None:
    condition = build_condition(time_after="08:00", time_before="18:00", timezone="Europe/Paris")
    report = _report(condition)
    assert _words(report) == ["it is 22:14 in Europe/Paris, outside 08:00\u201318:00"]
    assert report.parts[0].advice == "come back during 08:00\u201318:00, Europe/Paris time"


def test_time_windows_with_minutes_across_midnight_and_open_ended() -> None:
    minutes = build_condition(time_after="08:30", time_before="18:15", timezone="Europe/Paris")
    assert _words(_report(minutes)) == ["it is 22:14 in Europe/Paris, outside 08:30\u201318:15"]
    night = build_condition(time_after="23:00", time_before="06:00", timezone="Europe/Paris")
    assert _words(_report(night)) == ["it is 22:14 in Europe/Paris, outside 23:00\u201306:00"]
    until = build_condition(time_before="18:00", timezone="+02:00")
    assert _words(_report(until)) == ["it is 23:14 in UTC+02:00, outside 00:00\u201318:00"]
    written = 'request.time.getHours("UTC") > 7 && request.time.getHours("UTC") <= 17'
    assert _words(_report(written)) == ["it is 21:14 in UTC, outside 08:00\u201318:00"]


def test_user_agent_text() -> None:
    report = _report(build_condition(user_agent_contains="corp-vpn"))
    assert _words(report) == ["your browser's user agent does not contain 'corp-vpn'"]
    assert report.parts[0].advice == "use a browser or client whose user agent contains 'corp-vpn'"


def test_only_the_parts_that_failed_are_named() -> None:
    condition = build_condition(
        ip_ranges=["203.0.113.0/24"],
        user_agent_contains="Mozilla",
        time_after="08:00",
        time_before="18:00",
        timezone="Europe/Paris",
        require_mfa=True,
    )
    assert _words(_report(condition)) == [
        "it is 22:14 in Europe/Paris, outside 08:00\u201318:00",
        "you signed in without two-step verification",
    ]


def test_a_deny_is_explained_by_the_parts_that_made_it_apply() -> None:
    report = _report('!ip_in_range(request.ip, "10.0.0.0/8") && !request.mfa', effect="deny")
    assert _words(report) == [
        "your address 203.0.113.5 is not in 10.0.0.0/8",
        "you signed in without two-step verification",
    ]


def test_an_address_that_cannot_be_checked_says_so() -> None:
    report = _report(build_condition(ip_ranges=["10.0.0.0/8"]), ip="")
    assert _words(report) == ["your address (none) could not be checked against 10.0.0.0/8"]


def test_other_conditions_show_their_source_and_the_request_values_they_read() -> None:
    source = 'request.user_agent.matches("^corp") && principal.type == "user" && request.mfa'
    report = _report(source, mfa=True)
    assert report.parts == ()
    assert report.reads == (("request.mfa", "true"), ("request.user_agent", '"Mozilla/5.0"'))
    assert report.text == (
        f'{source} is false for request.mfa = true, request.user_agent = "Mozilla/5.0"'
    )
    # Only the request's own values: principal fields are not listed.
    assert all(name.startswith("request.") for name, _ in report.reads)


_ZONES = ("UTC", "Europe/Paris", "America/New_York", "+05:30")
_TIMES = st.sampled_from([None, "00:00", "06:00", "08:30", "12:00", "18:00", "23:45"])


@given(
    ranges=st.lists(st.sampled_from(["10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32"]), max_size=2),
    agent=st.sampled_from([None, "corp-vpn", "Mozilla"]),
    after=_TIMES,
    before=_TIMES,
    zone=st.sampled_from(_ZONES),
    mfa_required=st.booleans(),
    ip=st.sampled_from(["10.1.2.3", "203.0.113.5", "2001:db8::1", "not-an-ip"]),
    user_agent=st.sampled_from(["Mozilla/5.0", "corp-vpn/2", ""]),
    time=st.datetimes(
        min_value=dt.datetime(2024, 1, 1),
        max_value=dt.datetime(2026, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    mfa=st.booleans(),
)
def test_an_allow_names_some_part_exactly_when_its_condition_is_false(
    ranges, agent, after, before, zone, mfa_required, ip, user_agent, time, mfa
) -> None:
    if after is not None and after == before:
        return
    condition = build_condition(
        ip_ranges=ranges,
        user_agent_contains=agent,
        time_after=after,
        time_before=before,
        timezone=zone,
        require_mfa=mfa_required,
    )
    if not condition:
        return
    rule = _rule(condition)
    assert rule.condition is not None
    context = ConditionContext(
        ip=ip, user_agent=user_agent, time=time, mfa=mfa, principal_type="user", principal_id="u"
    )
    try:
        holds = rule.condition.evaluate(context)
    except Exception:
        holds = False  # fails closed: the unreadable part is named
    report = report_condition(rule, context.values)
    assert bool(report.parts) is not holds
