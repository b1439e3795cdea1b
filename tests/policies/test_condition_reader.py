"""Reading builder output back into the builder's inputs: the rule editor's round trip."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from policies.conditions.builder import build_condition
from policies.conditions.reader import no_inputs, read_back, split_condition

_v4 = st.tuples(st.ip_addresses(v=4), st.integers(0, 32))
_v6 = st.tuples(st.ip_addresses(v=6), st.integers(0, 128))
# As people type them: a network, a bare address, stray spaces.
cidrs = st.one_of(_v4, _v6).flatmap(
    lambda pair: st.sampled_from(
        [
            str(ipaddress.ip_network(f"{pair[0]}/{pair[1]}", strict=False)),
            str(pair[0]),
            f" {ipaddress.ip_network(f'{pair[0]}/{pair[1]}', strict=False)} ",
        ]
    )
)
times = st.none() | st.builds(lambda h, m: f"{h:02}:{m:02}", st.integers(0, 23), st.integers(0, 59))
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kathmandu", "+05:30"])
builder_inputs = st.fixed_dictionaries(
    {
        "ip_ranges": st.lists(cidrs, max_size=4),
        "user_agent_contains": st.none() | texts,
        "time_after": times,
        "time_before": times,
        "timezone": zones,
        "require_mfa": st.booleans(),
    }
)


def normalised(inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs as the builder understands them."""
    window = bool(inputs["time_after"] or inputs["time_before"])
    return {
        **inputs,
        "ip_ranges": [str(ipaddress.ip_network(cidr.strip())) for cidr in inputs["ip_ranges"]],
        "user_agent_contains": inputs["user_agent_contains"] or None,
        "timezone": inputs["timezone"] if window else "UTC",
    }


@given(builder_inputs)
def test_read_back_gives_the_builder_its_inputs_again(inputs: dict[str, Any]) -> None:
    assume(not inputs["time_after"] or inputs["time_after"] != inputs["time_before"])
    assert read_back(build_condition(**inputs)) == normalised(inputs)


@given(
    builder_inputs,
    st.sampled_from(
        [
            'principal.type == "application"',
            "(request.mfa) || true",
            'request.user_agent.startsWith(") && (")',
            'ip_in_range(request.ip, "10.0.0.0/8") || request.mfa',
        ]
    ),
)
def test_split_reads_the_fields_and_the_cel_the_rule_form_combines(
    inputs: dict[str, Any], typed: str
) -> None:
    assume(not inputs["time_after"] or inputs["time_after"] != inputs["time_before"])
    built = build_condition(**inputs)
    source = f"({built}) && ({typed})" if built else typed
    assert split_condition(source) == (normalised(inputs), typed)


def test_a_builder_condition_has_no_cel_left() -> None:
    source = build_condition(ip_ranges=["10.0.0.0/8"], require_mfa=True)
    inputs, typed = split_condition(source)
    assert (inputs["ip_ranges"], inputs["require_mfa"], typed) == (["10.0.0.0/8"], True, "")
    assert split_condition("") == (no_inputs(), "")


@pytest.mark.parametrize(
    "source",
    [
        "true",
        'ip_in_range(request.ip, "10.0.0.1")',  # the builder writes 10.0.0.1/32
        'ip_in_range(request.ip,"10.0.0.0/8")',
        '(ip_in_range(request.ip, "10.0.0.0/8"))',
        'ip_in_range(request.ip, "10.0.0.0/8") || request.mfa',
        "request.mfa && request.mfa",
        "(request.mfa) || (request.mfa)",
        'request.time.getHours("UTC") >= 08',
        'request.time.getHours("UTC") < 6 && request.time.getHours("UTC") >= 22',
        'request.time.getHours("UTC") >= 8 && request.time.getHours("Europe/Paris") < 18',
        'request.user_agent.contains("a") && request.user_agent.contains("b")',
        'request.user_agent.contains(r"a")',
    ],
)
def test_a_condition_the_builder_did_not_write_stays_cel(source: str) -> None:
    assert read_back(source) is None
    assert split_condition(source) == (no_inputs(), source)
