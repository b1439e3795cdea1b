"""CEL conditions on rules: checked on save, compiled once, evaluated at decision time.

Conditions are written in CEL (Common Expression Language) and run on
`common-expression-language`, the Python bindings of the Rust `cel` crate: it parses in
tens of microseconds and evaluates in about a microsecond, where the pure-Python
`cel-python` takes hundreds of microseconds per evaluation.

A condition may read the variables of `VARIABLES` (the request's, the principal's and the
resource's), call the CEL standard functions and `ip_in_range(ip, cidr)`. Timestamp
accessors take an optional time zone, as in cel-go:
`request.time.getHours("Europe/Paris") >= 8`. Tags are maps of strings:
`resource.tags["team"] == principal.tags["team"]`, `"team" in resource.tags`; reading a
key a map does not hold is an error, so such a condition fails closed (an allow does not
apply, a deny does), as does reading `resource.*` in a question about no resource.

What `compile_condition` checks, since the library has no static type checker:

- syntax, by the library's parser (its message is passed on);
- every identifier is a declared variable, a type name or a comprehension variable, and
  `request` / `principal` / `resource` are only used through their declared fields;
- every function called is a CEL standard function or one registered here;
- literal IP ranges given to `ip_in_range` and literal time zones given to timestamp
  accessors are valid;
- its cost is bounded (`policies.conditions.cost`): no nested macros, bounded literals,
  regular expressions given as literals and cheap enough to compile on every request;
- the expression evaluates to a bool, without error, on representative sample requests
  (whose tags hold every key the condition names).

That last check is by example, not by proof: an expression can still give a non-bool or
fail on some other request. Such a condition fails closed at decision time (see
`CompiledCondition.evaluate`), never open.

Measured here: evaluating a compiled program costs 0.3 to 2 µs, but handing the request's
values to the library (a `cel.Context`) costs 3 to 18 µs, every decision. So the shapes the
editor writes also get a Python fast path (`CompiledCondition.fast`, built by
`policies.conditions.fastpath`) that the evaluator tries first; the library stays the
reference and answers whenever the fast path cannot (an error, or a shape outside its
subset).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import cel

from policies.conditions.cost import (
    MACROS,
    MAX_CONDITION_LENGTH,
    MAX_USER_AGENT_LENGTH,
    CostError,
    check_patterns,
    check_string_literal,
    check_structure,
)
from policies.conditions.facts import MAX_TAG_KEY_LENGTH, MAX_TAGS, ResourceFacts, frozen_tags
from policies.conditions.fastpath import fast_path
from policies.conditions.functions import (
    CUSTOM_FUNCTIONS,
    LAZY_VARIABLES,
    ROOTS,
    TIMESTAMP_ACCESSORS,
    VARIABLES,
    cached_network,
    cached_timezone,
)

# Type names CEL resolves as identifiers (`type(x) == string`).
_TYPE_NAMES = frozenset(
    ("bool", "bytes", "double", "int", "list", "map", "null_type", "string", "type", "uint")
)
_STRING_FUNCTIONS = ("size", "contains", "startsWith", "endsWith", "matches")
_CONVERSIONS = ("int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn", "type")
_STANDARD_FUNCTIONS = frozenset(_STRING_FUNCTIONS + _CONVERSIONS)


class ConditionError(ValueError):
    """A condition is refused: syntax, unknown name, or not a bool. Raised on save."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConditionEvaluationError(RuntimeError):
    """A condition failed at decision time, or gave something other than a bool."""


# ------------------------------------------------------ IP ranges and time zones


def parse_ip_range(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`, or one address).

    Host bits must be zero: "10.0.0.1/8" is refused rather than silently widened.
    Raises `ConditionError` with a message for a person.
    """
    try:
        return cached_network(cidr)
    except (TypeError, ValueError) as error:
        hint = ""
        with contextlib.suppress(TypeError, ValueError):
            hint = f' (did you mean "{ipaddress.ip_network(cidr, strict=False)}"?)'
        raise ConditionError(f'Invalid IP range "{cidr}": {error}{hint}.') from None


def parse_timezone(name: str) -> dt.tzinfo:
    """An IANA zone ("Europe/Paris") or a fixed offset ("+02:00"); `ConditionError` else."""
    try:
        return cached_timezone(name)
    except (TypeError, ValueError) as error:
        message = f"{error}: use a name like Europe/Paris or an offset like +02:00."
        raise ConditionError(message) from None


_KNOWN_FUNCTIONS = _STANDARD_FUNCTIONS | frozenset(CUSTOM_FUNCTIONS)

# ------------------------------------------------------------------ static analysis

_NEXT_LITERAL_OR_COMMENT = re.compile(r"//|['\"]")
_PREFIX = re.compile(r"[rRbB]{1,2}$")
_QUOTES = ('"""', "'''", '"', "'")
# What follows an opening quote up to and including the closing one.
_BODY = {q: re.compile(r"(?:[^\\]|\\.)*?" + re.escape(q), re.S) for q in _QUOTES}
_RAW_BODY = {q: re.compile(r".*?" + re.escape(q), re.S) for q in _QUOTES}


def _scan(source: str) -> tuple[str, list[str]]:
    """Split valid CEL into code with literals replaced by `\\x00N\\x00`, and the literals.

    Comments are dropped. Only run on source the parser accepted, so every quote opens a
    literal and letters glued to a quote are its prefix.
    """
    code: list[str] = []
    literals: list[str] = []
    i, n = 0, len(source)
    while (found := _NEXT_LITERAL_OR_COMMENT.search(source, i)) is not None:
        start, chunk = found.start(), source[i : found.start()]
        if found.group() == "//":
            code.append(chunk)
            end = source.find("\n", start)
            i = n if end == -1 else end
            continue
        prefix_match = _PREFIX.search(chunk)
        prefix = prefix_match.group() if prefix_match else ""
        code.append(chunk[: len(chunk) - len(prefix)])
        quote = next(q for q in _QUOTES if source.startswith(q, start))
        body = (_RAW_BODY if "r" in prefix.lower() else _BODY)[quote]
        closing = body.match(source, start + len(quote))
        i = closing.end() if closing else n
        literals.append(prefix + source[start:i])
        code.append(f"\x00{len(literals) - 1}\x00")
    code.append(source[i:])
    return "".join(code), literals


# `request`/`principal`/`resource` as names (also `.request`, CEL's root-scoped form), not
# as a field of something else (`x.request`).
_ROOT_USE = re.compile(
    r"(?<!\w)(?<![\w)\]}]\.)(request|principal|resource)\b(?:\s*\.\s*([A-Za-z_]\w*))?"
)
# A tag read by field selection (`resource.tags.team`): its key is a name, not a literal.
_TAG_FIELD = re.compile(r"\btags\s*\.\s*([A-Za-z_]\w*)\b(?!\s*\()")
_BOUND = re.compile(rf"\.\s*(?:{'|'.join(MACROS)})\s*\(\s*([A-Za-z_]\w*)\s*,")
_PLACEHOLDER = re.compile(r"^\x00(\d+)\x00$")


def _call_arguments(code: str, name: str) -> Iterable[tuple[bool, list[str]]]:
    """For each call of `name`: (is it a method call, the arguments inside its parentheses)."""
    for match in re.finditer(rf"(\.\s*)?(?<![\w]){name}\s*\(", code):
        depth, start, args = 0, match.end(), []
        for k in range(match.end(), len(code)):
            char = code[k]
            if char in "([{":
                depth += 1
            elif char in ")]}":
                if depth == 0:
                    args.append(code[start:k].strip())
                    break
                depth -= 1
            elif char == "," and depth == 0:
                args.append(code[start:k].strip())
                start = k + 1
        yield match.group(1) is not None, [arg for arg in args if arg]


def _literal_value(arg: str, literals: list[str]) -> object:
    """The value of an argument that is one literal, else None (an expression)."""
    match = _PLACEHOLDER.match(arg)
    return _decode_literal(literals[int(match[1])]) if match else None


@lru_cache(maxsize=1024)
def _decode_literal(literal: str) -> object:
    return cel.evaluate(literal)  # CEL's own unescaping, not an imitation


def _check_names(program: cel.Program, code: str) -> frozenset[str]:
    """Refuse unknown identifiers, fields and functions; return the fields read."""
    references = program.references()
    bound = set(_BOUND.findall(code))
    for name in references["variables"]:
        if name not in ROOTS and name not in _TYPE_NAMES and name not in bound:
            raise ConditionError(
                f'Unknown variable "{name}". Conditions may use {", ".join(VARIABLES)}.'
            )
    for name in references["functions"]:
        if name[0] not in "_@!" and name not in _KNOWN_FUNCTIONS:
            raise ConditionError(f'Unknown function "{name}".')
    fields = set()
    for root, attribute in _ROOT_USE.findall(code):
        if root in bound:
            continue
        if not attribute:
            example = next(name for name in VARIABLES if name.startswith(f"{root}."))
            raise ConditionError(f'"{root}" can only be used through its fields, like {example}.')
        name = f"{root}.{attribute}"
        if name not in VARIABLES:
            raise ConditionError(
                f'Unknown field "{name}". Conditions may use {", ".join(VARIABLES)}.'
            )
        fields.add(name)
    return frozenset(fields)


def _check_literal_arguments(code: str, literals: list[str], used: set[str]) -> None:
    """Refuse bad arities, literal IP ranges or time zones that cannot work, and texts
    and regular expressions beyond the cost bound."""
    for literal in literals:
        check_string_literal(_decode_literal(literal))
    patterns = []
    for is_method, args in _call_arguments(code, "matches") if "matches" in used else ():
        pattern = _literal_value(args[-1], literals) if len(args) + is_method == 2 else None
        if not isinstance(pattern, str):
            raise ConditionError(
                "matches takes a text and a pattern written as a string, like "
                'request.user_agent.matches("^curl/").'
            )
        patterns.append(pattern)
    check_patterns(patterns)
    for is_method, args in _call_arguments(code, "ip_in_range") if "ip_in_range" in used else ():
        if len(args) + is_method != 2:
            raise ConditionError("ip_in_range takes two arguments: an address and an IP range.")
        cidr = _literal_value(args[-1], literals)
        if isinstance(cidr, str):
            parse_ip_range(cidr)
        elif cidr is not None:
            raise ConditionError("ip_in_range needs its IP range as a string.")
    for name in TIMESTAMP_ACCESSORS.keys() & used:
        for is_method, args in _call_arguments(code, name):
            if len(args) + is_method not in (1, 2):
                raise ConditionError(f"{name} takes a timestamp and an optional time zone.")
            tz = _literal_value(args[-1], literals) if len(args) + is_method == 2 else None
            if tz is not None and not isinstance(tz, str):
                raise ConditionError(f"{name} needs its time zone as a string.")
            if tz is not None:
                parse_timezone(tz)


# ------------------------------------------------------------------------ compiling

_SAMPLE_TIMES = (
    dt.datetime(2025, 3, 4, 10, 30, 15, 250000, tzinfo=dt.UTC),
    dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
)


def _sample_tags(code: str, literals: list[str]) -> dict[str, str]:
    """Tags holding every key the condition names (its texts, names after `tags.`): the
    samples check the condition's shape, not whether a resource has some tag."""
    keys = [_decode_literal(literal) for literal in literals]
    keys += _TAG_FIELD.findall(code)
    tags = {key: key for key in keys if isinstance(key, str) and 0 < len(key) <= MAX_TAG_KEY_LENGTH}
    return dict(list(tags.items())[:MAX_TAGS])


def _samples(tags: dict[str, str]) -> tuple[ConditionContext, ...]:
    frozen = frozen_tags(tags)
    return (
        ConditionContext(
            ip="10.1.2.3",
            user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            time=_SAMPLE_TIMES[0],
            mfa=True,
            principal_type="user",
            principal_id="6f1c2e1a-0d4b-4f7e-9a53-2b8f6a1d9c01",
            principal_tags=frozen,
            resource=ResourceFacts(
                "compute:instances",
                "3d0c8a4e-5b7f-4a21-9c6e-1f2a3b4c5d6e",
                "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                frozen,
            ),
        ),
        ConditionContext(
            ip="2001:db8::1",
            user_agent="",
            time=_SAMPLE_TIMES[1],
            mfa=False,
            principal_type="application",
            principal_id="0b7d3c55-3f1e-4c2a-8e6b-9a0f1d2c3b4e",
            principal_tags=frozen,
            resource=ResourceFacts(
                "storage:buckets",
                "c4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70",
                "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                frozen,
            ),
        ),
    )


def _error_message(error: Exception) -> str:
    # Library messages span lines (regex errors draw a caret); keep one readable line.
    text = " ".join(str(error).split()).removesuffix(".")
    text = text.replace("Python function call failed: ", "")
    text = text.removesuffix(". Check function arguments and their types")
    return f"{text}."


def _syntax_message(error: Exception) -> str:
    # The library's message repeats the source; keep the parser's own report after it.
    text = str(error)
    match = re.search(r"ERROR: <input>:(\d+):(\d+): (.*)", text, re.S)
    if not match:
        return text
    detail = match[3].split("\n|", 1)[0].strip()
    return f"Line {match[1]}, column {match[2]}: {detail}"


@dataclass(frozen=True, slots=True, eq=False)
class CompiledCondition:
    """A checked, compiled condition. Immutable and shareable between threads."""

    source: str
    fields: frozenset[str]
    functions: Mapping[str, Callable[..., Any]] = field(repr=False)
    program: cel.Program | None = field(repr=False)
    # Set only by `broken_condition`: the reason this condition always fails.
    error: str | None = None
    # The Python fast path (`policies.conditions.fastpath`), when the condition has one:
    # a function of `ConditionContext.values`. `evaluate` never uses it (it is the
    # library's answer); the evaluator tries it first and falls back to `evaluate` when
    # it raises.
    fast: Callable[[Mapping[str, Any]], bool] | None = field(default=None, repr=False)

    def evaluate(self, context: ConditionContext | Mapping[str, Any]) -> bool:
        """The condition's value for one request.

        `context` is a `ConditionContext` (the evaluator's way, built once per decision)
        or a plain mapping `{"request": {...}, "principal": {...}}`. Raises
        `ConditionEvaluationError` on any runtime error or a result other than a bool;
        the evaluator turns that into "fail closed".
        """
        if self.program is None:
            raise ConditionEvaluationError(self.error or "the condition could not be compiled")
        try:
            if isinstance(context, ConditionContext):
                activation = context.activation_for(self)
            else:
                activation = cel.Context(dict(context), dict(self.functions))
            result = self.program.execute(activation)
        except ConditionEvaluationError:
            raise
        except KeyError as error:  # a map (tags) without the key read
            key = error.args[0] if error.args else ""
            raise ConditionEvaluationError(f'no such key "{key}"') from error
        except Exception as error:  # every library failure (converting facts too) fails closed
            raise ConditionEvaluationError(_error_message(error)) from error
        if type(result) is not bool:
            raise ConditionEvaluationError(
                f"the condition gave {type(result).__name__}, not true or false"
            )
        return result


def compile_condition(source: str) -> CompiledCondition:
    """Parse and check a condition (see the module docstring for what is checked).

    Raises `ConditionError` with a message for the editor. An empty or blank condition
    is refused too: a rule without a condition stores none instead.
    """
    if not isinstance(source, str) or not source.strip():
        raise ConditionError("The condition is empty.")
    if len(source) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"A condition is at most {MAX_CONDITION_LENGTH} characters.")
    try:
        program = cel.compile(source)
    except Exception as error:  # the parser raises ValueError
        raise ConditionError(_syntax_message(error)) from None
    code, literals = _scan(source)
    fields = _check_names(program, code)
    used = set(program.functions())
    try:  # before the samples run it: they would pay the cost
        check_structure(code)
        _check_literal_arguments(code, literals, used)
    except CostError as error:
        raise ConditionError(str(error)) from None
    condition = CompiledCondition(
        source=source,
        fields=fields,
        functions={name: fn for name, fn in CUSTOM_FUNCTIONS.items() if name in used},
        program=program,
        fast=fast_path(source),
    )
    for sample in _samples(_sample_tags(code, literals) if fields & _TAG_FIELDS else {}):
        try:
            condition.evaluate(sample)
        except ConditionEvaluationError as error:
            hint = (
                ' (tag keys are written as text, like resource.tags["team"])'
                if fields & _TAG_FIELDS
                else ""
            )
            raise ConditionError(
                f"The condition fails on a sample request: {error}{hint}"
            ) from None
    return condition


def broken_condition(source: str, error: str) -> CompiledCondition:
    """A condition that always fails at evaluation, for stored text that no longer compiles.

    Compiling stored rules must not stop every decision because one condition became
    invalid (a catalogue or library change): such a condition fails closed instead.
    """
    return CompiledCondition(
        source=source, fields=frozenset(), functions={}, program=None, error=error
    )


# ------------------------------------------------------------------------- context

_TEXT_FIELDS = tuple(
    name for name, kind in VARIABLES.items() if kind == "string" and name not in LAZY_VARIABLES
)
_TAG_FIELDS = frozenset(name for name, kind in VARIABLES.items() if kind == "map")
_NO_INVALID_FACTS: Mapping[str, str] = {}
_NO_RESOURCE = "cannot be read: the question is about no resource"


def _is_text(value: object) -> bool:
    """Is `value` a string the library can take (UTF-8 encodable: no lone surrogate)?"""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _are_text(tags: Mapping[str, str]) -> bool:
    return all(_is_text(key) and _is_text(value) for key, value in tags.items())


def _invalid_facts(values: dict[str, Any]) -> dict[str, str]:
    """Set the facts the library cannot take to None in `values`; return why, by name."""
    invalid = {}
    for name in _TEXT_FIELDS:
        if not _is_text(values[name]):
            values[name] = None
            invalid[name] = "is not valid text"
    if values["request.time"] is None:
        invalid["request.time"] = "is out of range"
    return invalid


class ConditionContext:
    """The facts conditions may read, turned into one CEL activation per decision.

    Building an activation costs more than evaluating most conditions (every value
    crosses into Rust), so it is built lazily, with only the fields the conditions read,
    and reused by every condition of the decision. Not shared between threads.

    The principal's tags and the resource's facts (`LAZY_VARIABLES`) are read only when
    a condition reads them: `expect`, `prepare` and `activation_for` add them to `values`.
    Without a resource, a condition reading `resource.*` fails closed (an invalid fact).

    Conditions see at most `MAX_USER_AGENT_LENGTH` characters of the user agent. A fact
    the library cannot take (text holding a lone surrogate, a time beyond the range of
    UTC) is held as None, with its reason in `invalid`: a condition reading it fails
    closed with that reason, even where `&&` or `||` would not have needed it (so the
    evaluator does not ask the fast path, which would short-circuit).
    """

    __slots__ = (
        "_activation",
        "_expected",
        "_fields",
        "_functions",
        "_invalid",
        "_principal_tags",
        "_resource",
        "_values",
        "builds",
    )

    def __init__(
        self,
        *,
        ip: str,
        user_agent: str,
        time: dt.datetime,
        mfa: bool,
        principal_type: str,
        principal_id: str,
        principal_tags: Mapping[str, str] | None = None,
        resource: ResourceFacts | None = None,
    ) -> None:
        if time.tzinfo is None:
            raise ValueError("request time must be timezone-aware")
        try:
            # The library converts only datetime.timezone-aware values; UTC is canonical.
            utc: dt.datetime | None = time if time.tzinfo is dt.UTC else time.astimezone(dt.UTC)
        except OverflowError:
            utc = None
        if type(user_agent) is str:
            user_agent = user_agent[:MAX_USER_AGENT_LENGTH]
        self._values: dict[str, Any] = {
            "request.ip": ip,
            "request.user_agent": user_agent,
            "request.time": utc,
            "request.mfa": bool(mfa),
            "principal.type": principal_type,
            "principal.id": principal_id,
        }
        self._invalid: Mapping[str, str] = _NO_INVALID_FACTS
        try:  # the common case, cheaply: four ASCII strings and a time in range
            valid = utc is not None and (ip + user_agent + principal_type + principal_id).isascii()
        except TypeError:
            valid = False
        if not valid:
            self._invalid = _invalid_facts(self._values)
        self._principal_tags = principal_tags
        self._resource = resource
        self._activation: cel.Context | None = None
        self._fields: frozenset[str] = frozenset()
        self._functions: frozenset[str] = frozenset()
        self._expected: tuple[frozenset[str], frozenset[str]] | None = None
        self.builds = 0  # how many activations were built; observed by tests

    @property
    def values(self) -> Mapping[str, Any]:
        """The facts by variable name (`request.ip`…), as conditions see them."""
        return self._values

    @property
    def invalid(self) -> Mapping[str, str]:
        """Why each fact conditions cannot read is invalid, by variable name; usually empty."""
        return self._invalid

    def prepare(self, conditions: Iterable[CompiledCondition]) -> None:
        """Build one activation serving all `conditions` (call before evaluating them)."""
        fields: set[str] = set(self._fields)
        functions: set[str] = set(self._functions)
        for condition in conditions:
            fields |= condition.fields
            functions |= condition.functions.keys()
        self._build(frozenset(fields), frozenset(functions))

    def expect(self, fields: frozenset[str], functions: frozenset[str]) -> None:
        """Announce what the decision's conditions may read, without building anything:
        if one of them needs an activation (no fast path, or the fast path could not
        answer), the one activation built serves them all. Reads the principal's and the
        resource's facts among `fields` into `values`."""
        self._expected = (fields, functions)
        lazy = fields & LAZY_VARIABLES
        if lazy:
            self._read(lazy)

    def _read(self, fields: Iterable[str]) -> None:
        """Add the lazy facts among `fields` to `values` (and `invalid`, if so)."""
        resource = self._resource
        for name in fields:
            if name in self._values or name not in LAZY_VARIABLES:
                continue
            reason = None
            value: Any
            if name == "principal.tags":
                tags = self._principal_tags
                value = tags if type(tags) is MappingProxyType else frozen_tags(tags)
            elif resource is None:
                value, reason = None, _NO_RESOURCE
            elif name == "resource.tags":
                value = resource.tags
            elif name == "resource.type":
                value = resource.type
            elif name == "resource.id":
                value = resource.id  # None (CEL null) for a resource not registered yet
            else:
                value = resource.project_id
            valid = _are_text(value) if isinstance(value, Mapping) else _is_text(value)
            if not valid and value is not None:
                value, reason = None, "is not valid text"
            if reason is not None:
                if self._invalid is _NO_INVALID_FACTS:
                    self._invalid = {}
                self._invalid[name] = reason  # type: ignore[index]
            self._values[name] = value

    def activation_for(self, condition: CompiledCondition) -> cel.Context:
        """An activation holding what `condition` reads, reusing the current one if it can.

        Raises `ConditionEvaluationError` when the condition reads an invalid fact."""
        if not condition.fields <= self._values.keys():
            self._read(condition.fields)
        if self._invalid and not condition.fields.isdisjoint(self._invalid):
            name = min(condition.fields & self._invalid.keys())
            raise ConditionEvaluationError(f"{name} {self._invalid[name]}")
        if (
            self._activation is None
            or not condition.fields <= self._fields
            or not condition.functions.keys() <= self._functions
        ):
            fields, functions = self._expected or (frozenset(), frozenset())
            self._build(
                self._fields | fields | condition.fields,
                self._functions | functions | condition.functions.keys(),
            )
        assert self._activation is not None
        return self._activation

    def _build(self, fields: frozenset[str], functions: frozenset[str]) -> None:
        if self._activation is not None and fields == self._fields and functions == self._functions:
            return
        self._read(fields)
        variables: dict[str, dict[str, Any]] = {}
        for name in fields:
            if name in self._invalid:
                continue  # the library cannot take it; conditions reading it fail first
            root, attribute = name.split(".", 1)
            variables.setdefault(root, {})[attribute] = self._values[name]
        self._activation = cel.Context(
            variables, {name: CUSTOM_FUNCTIONS[name] for name in functions}
        )
        self._fields, self._functions = fields, functions
        self.builds += 1
