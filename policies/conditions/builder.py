"""The condition builder: CEL text for the editor's common cases (IP ranges, user agent,
time windows, MFA), every value validated or quoted, never spliced raw."""

from __future__ import annotations

import re
from collections.abc import Sequence

from policies.conditions.compiler import ConditionError, parse_ip_range, parse_timezone

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def cel_string(value: str) -> str:
    """`value` as a double-quoted CEL string literal, safe to splice into an expression.

    Backslashes, quotes and control or invisible format characters are escaped, so the
    literal can neither end early nor hide text from a reader.
    """
    out = ['"']
    for char in value:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif 0xD800 <= code <= 0xDFFF:
            raise ConditionError("The text holds an invalid character (a lone surrogate).")
        elif code < 0x20 or 0x7F <= code <= 0x9F or char in "\u200b\u200e\u200f\u2028\u2029":
            out.append(f"\\u{code:04x}")
        elif 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 or code == 0xFEFF:
            out.append(f"\\u{code:04x}")  # bidirectional overrides could disguise the text
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _minutes(value: str, label: str) -> tuple[int, int]:
    match = _HHMM.match(value)
    if not match:
        raise ConditionError(f'{label} must be a time like 08:30, not "{value}".')
    return int(match[1]), int(match[2])


def _time_test(tz: str, operator: str, hour_minute: tuple[int, int]) -> str:
    hour, minute = hour_minute
    if minute == 0:  # the readable form, exact on the hour: minutes cannot change the answer
        return f"request.time.getHours({tz}) {operator} {hour}"
    now = f"request.time.getHours({tz}) * 60 + request.time.getMinutes({tz})"
    return f"{now} {operator} {hour} * 60 + {minute}"


def build_condition(
    *,
    ip_ranges: Sequence[str] = (),
    user_agent_contains: str | None = None,
    time_after: str | None = None,
    time_before: str | None = None,
    timezone: str = "UTC",
    require_mfa: bool = False,
) -> str:
    """The CEL text for the editor's common cases, all of which must hold.

    - `ip_ranges`: the request comes from one of these networks;
    - `user_agent_contains`: the user agent contains this text (case-sensitive);
    - `time_after` / `time_before` ("HH:MM", in `timezone`): from `time_after` included
      to `time_before` excluded; a window such as 22:00 to 06:00 crosses midnight;
    - `require_mfa`: the user signed in with MFA.

    Returns "" when nothing is asked (no condition). Raises `ConditionError` for invalid
    input. Every value is validated or quoted, never spliced raw.
    """
    parts: list[str] = []
    if isinstance(ip_ranges, str):
        raise ConditionError("ip_ranges must be a list of IP ranges.")
    if not all(isinstance(cidr, str) for cidr in ip_ranges):
        raise ConditionError("ip_ranges must be a list of IP ranges.")
    networks = [str(parse_ip_range(cidr.strip())) for cidr in ip_ranges]
    if networks:
        tests = [f"ip_in_range(request.ip, {cel_string(net)})" for net in networks]
        parts.append(tests[0] if len(tests) == 1 else f"({' || '.join(tests)})")
    if user_agent_contains:
        parts.append(f"request.user_agent.contains({cel_string(user_agent_contains)})")
    if time_after or time_before:
        parse_timezone(timezone)
        tz = cel_string(timezone)
        after = _minutes(time_after, "The start time") if time_after else None
        before = _minutes(time_before, "The end time") if time_before else None
        if after is not None and after == before:
            raise ConditionError("The time window is empty: start and end are the same.")
        after_test = _time_test(tz, ">=", after) if after else ""
        before_test = _time_test(tz, "<", before) if before else ""
        if after and before and after > before:
            parts.append(f"({after_test} || {before_test})")  # crosses midnight
        else:
            parts.extend(test for test in (after_test, before_test) if test)
    if require_mfa:
        parts.append("request.mfa")
    return " && ".join(parts)
