"""The condition builder read backwards: which builder inputs wrote a stored condition.

The rule editor fills its fields (IP ranges, user agent, time window, MFA) from the
stored condition, so editing a rule changes what was there instead of ANDing a second
copy to it. Text is only read back when the builder, given the inputs read, writes it
again character for character: a condition someone wrote by hand, even one meaning the
same, stays CEL, and reading back never changes what a condition means.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypedDict

import cel

from policies.conditions.builder import build_condition
from policies.conditions.compiler import ConditionError


class BuilderInputs(TypedDict):
    """The keyword arguments of `build_condition`, normalised as the builder writes them."""

    ip_ranges: list[str]
    user_agent_contains: str | None
    time_after: str | None
    time_before: str | None
    timezone: str
    require_mfa: bool


def no_inputs() -> BuilderInputs:
    """The inputs asking nothing: `build_condition` writes no condition for them."""
    return {
        "ip_ranges": [],
        "user_agent_contains": None,
        "time_after": None,
        "time_before": None,
        "timezone": "UTC",
        "require_mfa": False,
    }


# A string literal as `cel_string` writes it: double quotes, backslash escapes.
_STRING = r'"(?:[^"\\\n\r]|\\.)*"'
_IP_TEST = re.compile(rf"ip_in_range\(request\.ip, ({_STRING})\)")
_USER_AGENT = re.compile(rf"request\.user_agent\.contains\(({_STRING})\)")
_HOUR_TEST = re.compile(rf"request\.time\.getHours\(({_STRING})\) (>=|<) (\d{{1,2}})")
_MINUTE_TEST = re.compile(
    rf"request\.time\.getHours\(({_STRING})\) \* 60 \+ request\.time\.getMinutes\(({_STRING})\)"
    rf" (>=|<) (\d{{1,2}}) \* 60 \+ (\d{{1,2}})"
)


def _code(text: str) -> Iterator[tuple[int, int]]:
    """(index, parenthesis depth after it) of each character of `text` outside string
    literals."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"'":  # skip the literal, escapes included
            i += 1
            while i < n and text[i] != char:
                i += 2 if text[i] == "\\" else 1
        else:
            depth += (char in "([{") - (char in ")]}")
            yield i, depth
        i += 1


def _split(text: str, separator: str) -> list[str]:
    """`text` cut at each `separator` outside string literals and parentheses."""
    parts, start = [], 0
    for i, depth in _code(text):
        if depth == 0 and i >= start and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
    parts.append(text[start:])
    return parts


def _enclosed(text: str) -> str | None:
    """The inside of `text` when one pair of parentheses wraps all of it, else None
    ("(a) || (b)" starts and ends with one, but they do not pair)."""
    if not (text.startswith("(") and text.endswith(")")):
        return None
    inside = text[1:-1]
    depths = [depth for _, depth in _code(inside)]
    return inside if min(depths, default=0) >= 0 and depths[-1:] in ([], [0]) else None


def _text(literal: str) -> str:
    value = cel.evaluate(literal)  # CEL's own unescaping, not an imitation
    if not isinstance(value, str):
        raise ValueError(literal)
    return value


def _time_test(text: str) -> tuple[str, str, str] | None:
    """(time zone, operator, "HH:MM") of one time bound as the builder writes it."""
    if match := _HOUR_TEST.fullmatch(text):
        zone, operator, hour, minute = match[1], match[2], match[3], "0"
    elif match := _MINUTE_TEST.fullmatch(text):
        if match[1] != match[2]:
            return None
        zone, operator, hour, minute = match[1], match[3], match[4], match[5]
    else:
        return None
    return _text(zone), operator, f"{int(hour):02}:{int(minute):02}"


def _read_ip_ranges(part: str) -> list[str] | None:
    """The ranges of `ip_in_range(request.ip, "…")`, or of several in parentheses."""
    if match := _IP_TEST.fullmatch(part):
        return [_text(match[1])]
    inside = _enclosed(part)
    tests = [_IP_TEST.fullmatch(test) for test in _split(inside or "", " || ")]
    if inside is None or len(tests) < 2 or None in tests:
        return None
    return [_text(test[1]) for test in tests if test]


def _read_part(part: str, inputs: BuilderInputs, zones: set[str]) -> bool:
    """Add what one conjunct of builder output asks to `inputs`; False if it is not one
    (or asks again what an earlier one asked)."""
    if (ranges := _read_ip_ranges(part)) is not None:
        if inputs["ip_ranges"]:
            return False
        inputs["ip_ranges"] = ranges
        return True
    if match := _USER_AGENT.fullmatch(part):
        if inputs["user_agent_contains"] is not None:
            return False
        inputs["user_agent_contains"] = _text(match[1])
        return True
    if part == "request.mfa":
        if inputs["require_mfa"]:
            return False
        inputs["require_mfa"] = True
        return True
    inside = _enclosed(part)
    tests = _split(inside, " || ") if inside else [part]
    bounds = [bound for test in tests if (bound := _time_test(test))]
    # A bound alone, or a window crossing midnight in parentheses: (from || until).
    if len(bounds) != len(tests) or (inside and [b[1] for b in bounds] != [">=", "<"]):
        return False
    for zone, operator, hour_minute in bounds:
        if inputs["time_after" if operator == ">=" else "time_before"]:
            return False
        if operator == ">=":
            inputs["time_after"] = hour_minute
        else:
            inputs["time_before"] = hour_minute
        zones.add(zone)
    return True


def read_back(source: str) -> BuilderInputs | None:
    """The builder inputs that write exactly `source`, or None when no inputs do.

    `read_back(build_condition(**inputs))` gives the inputs back, normalised as the
    builder writes them (IP ranges as networks, "HH:MM" times, the time zone only with a
    time window). An empty condition reads back as `no_inputs()`.
    """
    inputs, zones = no_inputs(), set[str]()
    if not source:
        return inputs
    try:
        if not all(_read_part(part, inputs, zones) for part in _split(source, " && ")):
            return None
        if len(zones) > 1:
            return None
        if zones:
            inputs["timezone"] = zones.pop()
        if build_condition(**inputs) != source:
            return None
    except (ConditionError, ValueError):
        return None
    return inputs


def split_condition(source: str) -> tuple[BuilderInputs, str]:
    """The builder inputs of a stored condition and the CEL left beside them.

    Reads what the rule form writes: builder output alone, builder output and CEL typed
    by hand as `(built) && (typed)`, or CEL alone, which comes back whole with no inputs.
    """
    if (inputs := read_back(source)) is not None:
        return inputs, ""
    parts = _split(source, " && ")
    if len(parts) == 2:
        built, typed = (_enclosed(part) for part in parts)
        # Stripped as the form strips it, or saving unchanged would change the text.
        if built and typed and typed == typed.strip() and (inputs := read_back(built)):
            return inputs, typed
    return no_inputs(), source
