"""Conditions that can never hold, or always do, are told apart at save by example."""

from __future__ import annotations

import time

import pytest

from policies.conditions.builder import build_condition
from policies.conditions.warnings import ALWAYS_TRUE, NEVER_TRUE, condition_warning

OFFICE = build_condition(ip_ranges=["10.0.0.0/8"])
EVERYTHING = build_condition(
    ip_ranges=["10.0.0.0/8", "2001:db8::/32"],
    user_agent_contains="Firefox",
    time_after="08:15",
    time_before="18:00",
    timezone="Europe/Paris",
    require_mfa=True,
)


@pytest.mark.parametrize(
    "source",
    [
        "false",
        f'({OFFICE}) && (ip_in_range(request.ip, "192.168.0.0/16"))',  # disjoint ranges
        f'({EVERYTHING}) && (ip_in_range(request.ip, "192.168.0.0/16"))',
        "request.mfa && !request.mfa",
        'request.time.getHours("Europe/Paris") >= 18 && request.time.getHours("Europe/Paris") < 8',
        'request.user_agent.contains("curl") && request.user_agent == "Firefox"',
    ],
)
def test_a_condition_no_request_satisfies_is_never_true(source: str) -> None:
    assert condition_warning(source) == NEVER_TRUE


@pytest.mark.parametrize(
    "source",
    [
        "true",
        "1 == 1",
        "request.mfa || !request.mfa",
        'ip_in_range(request.ip, "0.0.0.0/0") || ip_in_range(request.ip, "::/0")',
        'request.time.getHours("UTC") >= 0',
    ],
)
def test_a_condition_every_request_satisfies_is_always_true(source: str) -> None:
    assert condition_warning(source) == ALWAYS_TRUE


@pytest.mark.parametrize(
    "source",
    [
        OFFICE,
        EVERYTHING,
        f'({OFFICE}) && (ip_in_range(request.ip, "10.1.0.0/16"))',  # nested ranges overlap
        build_condition(ip_ranges=["192.0.2.7"]),  # a single address
        build_condition(time_after="08:16", time_before="08:17", timezone="Asia/Kathmandu"),
        build_condition(time_after="22:00", time_before="06:00", timezone="America/New_York"),
        'request.time.getDayOfWeek("+01:00") == 0 && request.time.getHours("+01:00") >= 9',
        'principal.type == "application"',
        'principal.id == "6c1d"',
        'request.user_agent.startsWith("Terraform/")',
        'request.ip.startsWith("10.")',
        "request.time.getMonth() == 1",  # months are beyond the samples: no verdict
        'request.user_agent.matches("^curl/")',
        "request.ip ==",  # invalid: the compiler's to refuse
    ],
)
def test_a_condition_that_depends_on_the_request_gets_no_warning(source: str) -> None:
    assert condition_warning(source) is None


def test_the_heaviest_builder_condition_is_judged_quickly() -> None:
    start = time.perf_counter()
    assert condition_warning(f'({EVERYTHING}) && (ip_in_range(request.ip, "192.168.0.0/16"))')
    assert time.perf_counter() - start < 1.0  # about 40 ms here; generous for slow CI
