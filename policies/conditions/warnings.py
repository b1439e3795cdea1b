"""Conditions that can never hold, or always do, found by example when a rule is saved.

A condition such as `ip_in_range(request.ip, "10.0.0.0/8") && ip_in_range(request.ip,
"192.168.0.0/16")` compiles, yet no request satisfies it; `1 == 1` lets every request
through. Neither is an error (the editor may mean it), so saving warns instead of
refusing. The condition is evaluated on every combination of sample values of what it
reads: the first and last address of each literal IP range and the addresses just
outside it; each half hour of a day in UTC and in each literal time zone, each side of
the minutes its numbers name, and other days of the week when it reads the day; with
and without MFA; user agents with and without each literal text. False on all of them:
"never true"; true on all: "always true". By example, not proof: conditions whose truth
the samples cannot span (regular expressions, dates, durations) get no warning, and
neither does one needing more than `MAX_EVALUATIONS` samples.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import cel

from policies.conditions.compiler import (
    CompiledCondition,
    ConditionContext,
    ConditionError,
    compile_condition,
    parse_timezone,
)

NEVER_TRUE = (
    "Its condition was false for every sample request tried, so this rule may never "
    "apply: look for requirements that exclude each other, such as two IP ranges with no "
    "address in common."
)
ALWAYS_TRUE = (
    "Its condition was true for every sample request tried, so it restricts nothing: the "
    "rule applies as if it had no condition."
)

# Bounds the work of one save: the samples of the editor's shapes stay well below it.
MAX_EVALUATIONS = 25_000
_MAX_LITERALS = 8

_LITERAL = re.compile(r"""(?<![rRbB\w])("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")
_ADDRESS_START = re.compile(r"[0-9a-fA-F.:]{2,38}")
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
# What the samples cannot span: any date, a regular expression, a computed timestamp.
_UNJUDGED = re.compile(
    r"\b(?:matches|timestamp|duration|getFullYear|getMonth|getDate|getDayOfMonth"
    r"|getDayOfYear|getSeconds|getMilliseconds)\b|\"\"\"|'''"
)
_WEEK = dt.datetime(2025, 3, 3)  # a Monday, without daylight saving time changes near
_FAR = (dt.datetime(1990, 6, 15, 12, tzinfo=dt.UTC), dt.datetime(2090, 6, 15, 12, tzinfo=dt.UTC))
_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
_PRINCIPAL_ID = "6f1c2e1a-0d4b-4f7e-9a53-2b8f6a1d9c01"


def condition_warning(source: str) -> str | None:
    """`NEVER_TRUE`, `ALWAYS_TRUE` or None (it depends on the request, or cannot be told).

    Only for a condition that compiles: anything else is the compiler's to refuse.
    """
    try:
        condition = compile_condition(source)
    except ConditionError:
        return None
    code = _LITERAL.sub('""', source)
    if _UNJUDGED.search(code):
        return None
    texts = _texts(source)
    seen: set[bool] = set()
    for evaluations, context in enumerate(_samples(condition, code, texts)):
        if evaluations >= MAX_EVALUATIONS:
            return None
        if (holds := _holds(condition, context)) is not None:
            seen.add(holds)
            if len(seen) == 2:
                return None
    if seen == {False}:
        return NEVER_TRUE
    return ALWAYS_TRUE if seen == {True} else None


def _holds(condition: CompiledCondition, context: ConditionContext) -> bool | None:
    """The condition's value as the evaluator computes it; None when it errors."""
    if condition.fast is not None:
        with contextlib.suppress(Exception):  # else the library answers, with its semantics
            return condition.fast(context.values)
    try:
        return condition.evaluate(context)
    except Exception:  # a sample the condition cannot read tells nothing
        return None


def _texts(source: str) -> list[str]:
    """The condition's string literals, decoded, the first few of them."""
    texts: list[str] = []
    for literal in _LITERAL.findall(source):
        try:
            value = cel.evaluate(literal)
        except ValueError:
            continue
        if isinstance(value, str) and value not in texts:
            texts.append(value)
    return texts[:_MAX_LITERALS]


def _samples(
    condition: CompiledCondition, code: str, texts: Sequence[str]
) -> Iterable[ConditionContext]:
    """Every combination of the sample values of the fields the condition reads."""
    reads = condition.fields
    networks = [network for text in texts if (network := _network(text))]
    zones = [zone for text in texts if (zone := _zone(text))]
    others = [text for text in texts if _network(text) is None]
    values: dict[str, Sequence[Any]] = {
        "ip": _addresses(networks, others) if "request.ip" in reads else ["203.0.113.5"],
        "user_agent": ["", _USER_AGENT, *others] if "request.user_agent" in reads else [""],
        "mfa": [False, True] if "request.mfa" in reads else [False],
        "principal_type": ["user", "application", *others]
        if "principal.type" in reads
        else ["user"],
        "principal_id": [_PRINCIPAL_ID, *others] if "principal.id" in reads else [_PRINCIPAL_ID],
        "time": _times(zones, code) if "request.time" in reads else [_FAR[0]],
    }
    for combination in itertools.product(*values.values()):
        yield ConditionContext(**dict(zip(values, combination, strict=True)))


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _addresses(
    networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network], texts: Iterable[str]
) -> list[str]:
    """An address of each IP version; for each network its first and last addresses and
    those just outside it; an address starting with each text that looks like the start
    of one ("10.", "2001:db8:")."""
    found = [ipaddress.ip_address("203.0.113.5"), ipaddress.ip_address("2001:db8:ffff::5")]
    for network in networks:
        first, last = network[0], network[-1]
        for address, step in ((first, -1), (first, 0), (last, 0), (last, 1)):
            with contextlib.suppress(ValueError):  # no address before the first or after the last
                found.append(address + step)
    for text in texts:
        if _ADDRESS_START.fullmatch(text):
            for ending in ("1", "0.1", "0.0.1", ":1", "::1"):
                with contextlib.suppress(ValueError):
                    found.append(ipaddress.ip_address(text + ending))
    return [str(address) for address in dict.fromkeys(found)]


def _zone(text: str) -> dt.tzinfo | None:
    try:
        return parse_timezone(text)
    except ConditionError:
        return None


def _times(zones: Iterable[dt.tzinfo], code: str) -> list[dt.datetime]:
    """Instants spanning a day in UTC and in each time zone the condition names: each
    half hour, each side of the minutes its numbers name (at the hours they name), and
    when it reads the day of the week, a few hours of each other day."""
    numbers = {int(number) for number in _NUMBER.findall(code)}
    hours = sorted(number for number in numbers if number < 24)[:_MAX_LITERALS]
    minutes = sorted(number for number in numbers if 0 < number < 60 and number != 30)
    times = list(_FAR)
    for zone in (dt.UTC, *zones):
        day = _WEEK.replace(tzinfo=zone)
        times += [day + dt.timedelta(minutes=30 * k) for k in range(48)]
        times += [
            day + dt.timedelta(hours=hour, minutes=minute + before)
            for hour in hours
            for minute in minutes[:_MAX_LITERALS]
            for before in (-1, 0)
        ]
        if "getDayOfWeek" in code:
            times += [
                day + dt.timedelta(days=d, hours=h) for d in range(1, 7) for h in (3, 9, 15, 21)
            ]
    return times
