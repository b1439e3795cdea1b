"""Conditions in words, for the people they refuse.

A denial names the part of a condition that decided it, with the request's own value:
"your address 203.0.113.5 is not in 10.0.0.0/8". The shapes the condition builder
writes (IP ranges, user-agent text, time windows in a zone, MFA) and tag tests
(`resource.tags["team"] == principal.tags["team"]`, `resource.tags["env"] == "prod"`,
`"team" in resource.tags`) are recognised on the tokens of the fast path's parser
(`policies.conditions.fastpath`), one top-level `&&` part at a time, and each part is
judged with the closure that parser builds for it. Any other condition is shown as its
CEL source with the values it reads.

Reports are built only for denials, by the evaluator, from the values its conditions
saw. An allow by a rule whose condition reads tags names the tag values it read
(`tag_reads`): `resource.tags["team"] is "web", principal.tags["team"] is "web"`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from policies.conditions.fastpath import FastParser, NoFastPath
from policies.conditions.functions import cached_timezone

if TYPE_CHECKING:
    from policies.evaluator import CompiledRule

Kind = Literal["ip", "user_agent", "time", "mfa", "tag"]
_Check = Callable[[Mapping[str, Any]], bool]
_Token = tuple[str, str]

_DAY = 24 * 60
_STRING_VERBS = {
    "contains": ("contains", "does not contain"),
    "startsWith": ("starts with", "does not start with"),
    "endsWith": ("ends with", "does not end with"),
}


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# -------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class Part:
    """One recognised part of a condition, judged on one request.

    `positive` is the truth of the plain test (the address is in the ranges, the user
    agent contains the text, the time is in the window, the session used MFA) before
    any `!`, or None when the request's value could not be checked; `negated` says the
    condition asks for the opposite.
    """

    kind: Kind
    positive: bool | None
    negated: bool = False
    value: str = ""
    expected: str = ""
    verb: str = ""
    zone: str = ""

    @property
    def words(self) -> str:
        """The request's fact, said to the person who made it."""
        return self._fact(you=True)

    @property
    def neutral(self) -> str:
        """The same fact for a third party (the simulator, the audit trail)."""
        return self._fact(you=False)

    @property
    def advice(self) -> str:
        """What a request would need to meet this part."""
        want = not self.negated
        if self.kind == "ip":
            if want:
                return f"connect from an address in {self.expected}, such as the office network"
            return f"connect from an address outside {self.expected}"
        if self.kind == "user_agent":
            verb = _STRING_VERBS[self.verb][0 if want else 1]
            return f"use a browser or client whose user agent {verb} '{self.expected}'"
        if self.kind == "mfa":
            return f"sign in {'with' if want else 'without'} two-step verification"
        if self.kind == "tag":
            wanted = self.expected if want else f"!({self.expected})"
            return f"act where the tags meet {wanted}"
        return f"come back during {self.expected}, {self.zone} time"

    def _fact(self, *, you: bool) -> str:
        positive = self.positive
        if self.kind == "tag":  # the same words for everyone: the values read
            return self.value
        if self.kind == "ip":
            subject = "your address" if you else "the request's address"
            if positive is None:
                shown = self.value or "(none)"
                return f"{subject} {shown} could not be checked against {self.expected}"
            return f"{subject} {self.value} is {'in' if positive else 'not in'} {self.expected}"
        if self.kind == "user_agent":
            subject = "your browser's user agent" if you else "the request's user agent"
            if positive is None:
                return f"{subject} could not be read"
            return f"{subject} {_STRING_VERBS[self.verb][0 if positive else 1]} '{self.expected}'"
        if self.kind == "mfa":
            subject = "you signed in" if you else "the session signed in"
            return f"{subject} {'with' if positive else 'without'} two-step verification"
        if positive is None:
            return f"the time in {self.zone} could not be read"
        where = "within" if positive else "outside"
        return f"it is {self.value} in {self.zone}, {where} {self.expected}"


@dataclass(frozen=True, slots=True)
class ConditionReport:
    """Why one rule's condition took part in a denial.

    For an allow rule, the parts of its condition the request did not meet; for a deny
    rule, the parts that made it apply. A condition in no shape known here has no parts:
    `source` and `reads` (the request's values it reads, as `(variable, value)`) stand
    for them. `error` is the condition's run-time error, if it failed.
    """

    rule: CompiledRule
    parts: tuple[Part, ...]
    reads: tuple[tuple[str, str], ...] = ()
    error: str | None = None

    @property
    def source(self) -> str:
        return self.rule.condition_source

    @property
    def text(self) -> str:
        """The report in a sentence for a third party (decisions' explanations)."""
        if self.parts:
            return " and ".join(part.neutral for part in self.parts)
        values = ", ".join(f"{name} = {value}" for name, value in self.reads)
        outcome = "true" if self.rule.effect == "deny" else "false"
        return f"{self.source} is {outcome}" + (f" for {values}" if values else "")


def report_condition(
    rule: CompiledRule, values: Mapping[str, Any], error: str | None = None
) -> ConditionReport:
    """Explain `rule`'s condition on the request whose facts are `values`
    (`ConditionContext.values`): the parts that failed for an allow, that held for a deny.
    """
    clauses = _clauses(rule.condition_source)
    if clauses is not None:
        parts = tuple(_judge(clause, values) for clause in clauses)
        # An allow is explained by the parts the request missed, a deny by those it met.
        beside_the_point = rule.effect == "allow"
        shown = tuple(part for part in parts if _meets(part) is not beside_the_point)
        if shown:
            return ConditionReport(rule, shown, error=error)
    return ConditionReport(rule, (), _reads(rule, values), error)


def _meets(part: Part) -> bool | None:
    """Does the request meet the part (None: could not be checked)?"""
    return None if part.positive is None else part.positive is not part.negated


def _judge(clause: _Clause, values: Mapping[str, Any]) -> Part:
    try:
        met = all(check(values) for check in clause.checks)
    except Exception:  # a fact the condition cannot read: it failed closed
        positive = None
    else:
        positive = met is not clause.negated
    value = ""
    if clause.kind == "ip":
        value = str(values.get("request.ip") or "")
    elif clause.kind == "tag":
        value = _tag_values(clause.reads, values)
    elif clause.kind == "time":
        now = values.get("request.time")
        try:
            value = _clock_of(now, clause.zone)
        except (TypeError, ValueError, OverflowError):
            positive = None
    return Part(
        kind=clause.kind,
        positive=positive,
        negated=clause.negated,
        value=value,
        expected=clause.expected,
        verb=clause.verb,
        zone=f"UTC{clause.zone}" if clause.zone.startswith(("+", "-")) else clause.zone,
    )


def _clock_of(now: object, zone: str) -> str:
    if not isinstance(now, dt.datetime):
        raise TypeError("no time")
    local = now.astimezone(cached_timezone(zone))
    return _clock(local.hour * 60 + local.minute)


def _reads(rule: CompiledRule, values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The request's own values the condition reads (and the resource's, and the tags
    it reads by key), for a person to compare."""
    fields = rule.condition.fields if rule.condition is not None else frozenset()
    shown = []
    for name in sorted(field for field in fields if field.startswith("resource.")):
        value = values.get(name)
        if name != "resource.tags":
            shown.append((name, f'"{value}"' if isinstance(value, str) else "(unknown)"))
    for name, key in _tag_keys(rule.condition_source):
        shown.append((f'{name}["{key}"]', _tag_value(values.get(name), key)))
    for name in sorted(field for field in fields if field.startswith("request.")):
        value = values.get(name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dt.datetime):
            text = value.strftime("%Y-%m-%d %H:%M:%S UTC")
        elif isinstance(value, str):
            text = f'"{value}"' if name == "request.user_agent" else value or "(none)"
        else:
            text = "(unreadable)"
        shown.append((name, text))
    return tuple(shown)


# ---------------------------------------------------------------------------- tags

_LITERAL = r"(\"[^\"\\\n]*\"|'[^'\\\n]*')"
_TAGS = r"\b(resource|principal)\s*\.\s*tags\b"
_TAG_USES = re.compile(
    rf"{_TAGS}\s*(?:\[\s*{_LITERAL}\s*\]|\.\s*([A-Za-z_]\w*)\b(?!\s*\())"
    rf"|{_LITERAL}\s+in\s+{_TAGS}"
)


@lru_cache(maxsize=1024)
def _tag_keys(source: str) -> tuple[tuple[str, str], ...]:
    """(`resource.tags` or `principal.tags`, key) of each tag the condition reads by a
    literal key, in order, once each."""
    found: dict[tuple[str, str], None] = {}
    for root, literal, name, held, held_root in _TAG_USES.findall(source):
        if held:
            found[(f"{held_root}.tags", held[1:-1])] = None
        else:
            found[(f"{root}.tags", literal[1:-1] if literal else name)] = None
    return tuple(found)


def _tag_value(tags: object, key: str) -> str:
    if not isinstance(tags, Mapping):
        return "unknown"
    value = tags.get(key)
    return "absent" if value is None else f'"{value}"'


def _tag_values(reads: Sequence[tuple[str, str]], values: Mapping[str, Any]) -> str:
    return ", ".join(
        f'{name}["{key}"] is {_tag_value(values.get(name), key)}' for name, key in reads
    )


def tag_reads(rule: CompiledRule, values: Mapping[str, Any]) -> str:
    """The tags `rule`'s condition reads, with their values in `values` ("" if none):
    `resource.tags["team"] is "web", principal.tags["team"] is "web"`."""
    keys = _tag_keys(rule.condition_source) if rule.condition_source else ()
    return _tag_values(keys, values) if keys else ""


# -------------------------------------------------------------------------- shapes


@dataclass(frozen=True, slots=True)
class _Clause:
    """A recognised part: the conjuncts it stands for (it holds when all of them do)."""

    kind: Kind
    checks: tuple[_Check, ...]
    negated: bool = False
    expected: str = ""
    verb: str = ""
    zone: str = ""
    start: int | None = None  # time windows, in minutes after midnight
    end: int | None = None
    reads: tuple[tuple[str, str], ...] = ()  # tags: (`resource.tags`…, key)


class _Conjuncts(FastParser):
    """The fast path's parser, stopped at each top-level `&&`."""

    def split(self) -> list[tuple[list[_Token], _Check]]:
        found = []
        while True:
            start = self.position
            kind, check = self.relation()
            if kind is not bool:
                raise NoFastPath
            found.append((self.tokens[start : self.position], check))
            if self.peek() is None:
                return found
            self.take("&&")


@lru_cache(maxsize=1024)
def _clauses(source: str) -> tuple[_Clause, ...] | None:
    """The recognised parts of `source`, in order, or None if any part is unknown."""
    if not source or "//" in source:
        return None  # no condition, or comments (the fast path's tokenizer skips them)
    try:
        conjuncts = _Conjuncts(source).split()
    except (NoFastPath, RecursionError):
        return None
    clauses: list[_Clause] = []
    for tokens, check in conjuncts:
        clause = _clause(tokens, check)
        if clause is None:
            return None
        previous = clauses[-1] if clauses else None
        if (  # the builder writes a window as two bounds: "from 08:00", "before 18:00"
            clause.kind == "time"
            and previous is not None
            and previous.kind == "time"
            and previous.zone == clause.zone
            and previous.end is None
            and clause.start is None
        ):
            checks = (*previous.checks, check)
            clauses[-1] = _window(previous.zone, previous.start, clause.end, *checks)
        else:
            clauses.append(clause)
    return tuple(clauses)


# A pattern is a sequence of: a token's exact text, a token kind to capture ("str",
# "int"), or a frozenset of texts one of which is captured.
_STR, _INT = ("str",), ("int",)
_COMPARE = frozenset(("<", "<=", ">", ">="))
_IP = ("ip_in_range", "(", "request", ".", "ip", ",", _STR, ")")
_USER_AGENT = ("request", ".", "user_agent", ".", frozenset(_STRING_VERBS), "(", _STR, ")")
_MFA = ("request", ".", "mfa")
_OWNER = frozenset(("resource", "principal"))
_TAG = (_OWNER, ".", "tags", "[", _STR, "]")
_EQUALITY = frozenset(("==", "!="))
_TAG_IS = (*_TAG, _EQUALITY, _STR)
_TAGS_MATCH = (*_TAG, _EQUALITY, *_TAG)
_TAG_HELD = (_STR, "in", _OWNER, ".", "tags")
_NOW = ("request", ".", "time", ".")
_HOURS = (*_NOW, "getHours", "(", _STR, ")", _COMPARE, _INT)
_MINUTES = (
    *_NOW, "getHours", "(", _STR, ")", "*", "60", "+",
    *_NOW, "getMinutes", "(", _STR, ")", _COMPARE, _INT, "*", "60", "+", _INT,
)  # fmt: skip


def _match(tokens: Sequence[_Token], pattern: Sequence[object]) -> list[str] | None:
    if len(tokens) != len(pattern):
        return None
    captured = []
    for (kind, text), expected in zip(tokens, pattern, strict=True):
        if isinstance(expected, str):
            if text != expected:
                return None
            continue
        if isinstance(expected, tuple) and kind == expected[0]:
            captured.append(text[1:-1] if kind == "str" else text)
        elif isinstance(expected, frozenset) and text in expected:
            captured.append(text)
        else:
            return None
    return captured


def _clause(tokens: list[_Token], check: _Check) -> _Clause | None:
    negated = tokens[:1] == [("op", "!")]
    body = _unwrap(tokens[1:] if negated else tokens)
    alternatives = _split_or(body)
    ranges = [_match(_unwrap(option), _IP) for option in alternatives]
    if all(ranges):
        expected = " or ".join(found[0] for found in ranges if found)
        return _Clause("ip", (check,), negated, expected)
    if len(alternatives) > 1:
        return None if negated else _midnight_window(alternatives, check)
    if found := _match(body, _USER_AGENT):
        return _Clause("user_agent", (check,), negated, found[1], verb=found[0])
    if _match(body, _MFA) is not None:
        return _Clause("mfa", (check,), negated)
    if tag := _tag_clause(body):
        return _Clause("tag", (check,), negated, _written(body), reads=tag)
    bound = _bound(body)
    if bound is None or negated:
        return None
    zone, start, end = bound
    return _window(zone, start, end, check)


def _written(tokens: Sequence[_Token]) -> str:
    """Tokens as CEL text, spaced around comparisons only."""
    return "".join(f" {text} " if text in ("==", "!=", "in") else text for _, text in tokens)


def _tag_clause(tokens: Sequence[_Token]) -> tuple[tuple[str, str], ...] | None:
    """The tags a tag test reads, as (`resource.tags`…, key), or None if it is not one."""
    if found := _match(tokens, _TAGS_MATCH):
        return ((f"{found[0]}.tags", found[1]), (f"{found[3]}.tags", found[4]))
    if found := _match(tokens, _TAG_IS):
        return ((f"{found[0]}.tags", found[1]),)
    if found := _match(tokens, _TAG_HELD):
        return ((f"{found[1]}.tags", found[0]),)
    return None


def _bound(tokens: Sequence[_Token]) -> tuple[str, int | None, int | None] | None:
    """A time bound (zone, start, end), in minutes; one of start and end is None."""
    if found := _match(tokens, _HOURS):
        zone, operator, hours = found
        minutes, step = int(hours) * 60, 60
    elif found := _match(tokens, _MINUTES):
        zone, other_zone, operator, hours, extra = found
        if zone != other_zone:
            return None
        minutes, step = int(hours) * 60 + int(extra), 1
    else:
        return None
    if operator in (">", "<="):
        minutes += step  # getHours() > 7 is from 08:00; getHours() <= 17 is before 18:00
    if not 0 <= minutes <= _DAY:
        return None
    return (zone, minutes, None) if operator in (">=", ">") else (zone, None, minutes)


def _midnight_window(alternatives: list[list[_Token]], check: _Check) -> _Clause | None:
    """The builder's window across midnight: (from 22:00 || before 06:00)."""
    if len(alternatives) != 2:
        return None
    after, before = (_bound(_unwrap(option)) for option in alternatives)
    if after is None or before is None or after[0] != before[0]:
        return None
    if after[1] is None or before[2] is None:
        return None
    return _window(after[0], after[1], before[2], check)


def _window(zone: str, start: int | None, end: int | None, *checks: _Check) -> _Clause:
    shown = f"{_clock(start or 0)}\u2013{_clock(_DAY if end is None else end)}"  # an en dash
    return _Clause("time", checks, expected=shown, zone=zone, start=start, end=end)


def _unwrap(tokens: list[_Token]) -> list[_Token]:
    """`tokens` without parentheses enclosing all of them."""
    while tokens[:1] == [("op", "(")] and tokens[-1:] == [("op", ")")]:
        depth = 0
        for index, (_, text) in enumerate(tokens):
            depth += {"(": 1, ")": -1}.get(text, 0)
            if depth == 0 and index < len(tokens) - 1:
                return tokens  # "(a) || (b)": the first parenthesis closes early
        tokens = tokens[1:-1]
    return tokens


def _split_or(tokens: list[_Token]) -> list[list[_Token]]:
    """The operands of a top-level `||` (one operand when there is none)."""
    operands: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        text = token[1]
        depth += {"(": 1, ")": -1}.get(text, 0)
        if depth == 0 and text == "||":
            operands.append([])
        else:
            operands[-1].append(token)
    return operands
