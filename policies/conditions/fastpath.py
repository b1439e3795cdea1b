"""The Python fast path of conditions: the shapes the editor writes, as Python closures.

Running a condition on the library costs a few microseconds more per decision than
the condition itself: every activation converts the request's values into Rust.
The shapes the editor writes (IP ranges, MFA, user-agent text, time windows, principal
tests, tags: `resource.tags["team"] == "web"`, `resource.tags["team"] ==
principal.tags["team"]`, `"team" in resource.tags`) are also compiled here to a Python
closure over the same values and the same custom functions. The closure only answers
when it gets a bool without any error; on any exception the library evaluates the
condition as before, so errors keep exactly the library's meaning (CEL's `&&`/`||`
absorb some errors). Anything outside this typed subset has no closure. A property test
checks closures and library agree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from policies.conditions.functions import ROOTS, TIMESTAMP_ACCESSORS, VARIABLES, ip_in_range

_INT64 = (-(2**63), 2**63 - 1)
_FAST_TOKEN = re.compile(
    r"\s*(?:(?P<int>\d+)(?![\w.])|(?P<str>\"[^\"\\\n\r]*\"|'[^'\\\n\r]*')"
    r"|(?P<name>[A-Za-z_]\w*)|(?P<op>&&|\|\||==|!=|<=|>=|[<>!()+*.,\[\]-]))"
)
# A map of strings (tags) is typed `dict` here; its values are held as either mapping.
_TYPE_OF_FIELD = {
    name: {"string": str, "bool": bool, "timestamp": dt.datetime, "map": dict}[kind]
    for name, kind in VARIABLES.items()
}
_CHECKED_TYPE: Mapping[type, type | tuple[type, ...]] = {dict: (dict, MappingProxyType)}
_COMPARISONS: Mapping[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_STRING_TESTS: Mapping[str, Callable[[str, str], bool]] = {
    "contains": lambda text, part: part in text,
    "startsWith": str.startswith,
    "endsWith": str.endswith,
}

# A node: (its type, a function of the values mapping).
_Node = tuple[type, Callable[[Mapping[str, Any]], Any]]


class NoFastPath(Exception):
    """The expression is outside the subset the fast path handles."""


def _checked_int(value: int) -> int:
    if not _INT64[0] <= value <= _INT64[1]:
        raise OverflowError("int64 overflow")  # the library errors: let it decide
    return value


class FastParser:
    """Recursive descent over CEL's precedence: || < && < relations < + - < * < ! < member."""

    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position, end = 0, len(source.rstrip())
        while position < end:
            match = _FAST_TOKEN.match(source, position)
            if match is None or match.end() == position:
                raise NoFastPath
            kind = match.lastgroup
            assert kind is not None
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise NoFastPath
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise NoFastPath
        self.position += 1
        return token

    def parse(self) -> _Node:
        node = self.logical("||")
        if self.position != len(self.tokens) or node[0] is not bool:
            raise NoFastPath
        return node

    def logical(self, operator: str) -> _Node:
        operand = self.relation if operator == "&&" else lambda: self.logical("&&")
        left = operand()
        while self.peek() == operator:
            self.take()
            right = operand()
            if left[0] is not bool or right[0] is not bool:
                raise NoFastPath
            a, b = left[1], right[1]
            if operator == "&&":
                left = (bool, lambda v, a=a, b=b: a(v) and b(v))
            else:
                left = (bool, lambda v, a=a, b=b: a(v) or b(v))
        return left

    def relation(self) -> _Node:
        left = self.additive()
        operator = self.peek()
        if operator == "in":  # only a text in a map of strings (tags)
            self.take()
            right = self.additive()
            if left[0] is not str or right[0] is not dict:
                raise NoFastPath
            key, tags = left[1], right[1]
            return (bool, lambda v: key(v) in tags(v))
        if operator not in _COMPARISONS:
            return left
        self.take()
        right = self.additive()
        if left[0] is not right[0] or left[0] in (dt.datetime, dict):
            raise NoFastPath  # mixed types, timestamps and maps: the library decides
        if left[0] is not int and operator not in ("==", "!="):
            raise NoFastPath  # ordering only for ints
        compare, a, b = _COMPARISONS[operator], left[1], right[1]
        return (bool, lambda v: compare(a(v), b(v)))

    def additive(self) -> _Node:
        left = self.multiplicative()
        while self.peek() in ("+", "-"):
            operator = self.take()[1]
            right = self.multiplicative()
            if left[0] is not int or right[0] is not int:
                raise NoFastPath  # string and list concatenation: the library decides
            a, b = left[1], right[1]
            if operator == "+":
                left = (int, lambda v, a=a, b=b: _checked_int(a(v) + b(v)))
            else:
                left = (int, lambda v, a=a, b=b: _checked_int(a(v) - b(v)))
        return left

    def multiplicative(self) -> _Node:
        left = self.unary()
        while self.peek() == "*":
            self.take()
            right = self.unary()
            if left[0] is not int or right[0] is not int:
                raise NoFastPath
            a, b = left[1], right[1]
            left = (int, lambda v, a=a, b=b: _checked_int(a(v) * b(v)))
        return left

    def unary(self) -> _Node:
        if self.peek() == "!":
            self.take()
            kind, operand = self.unary()
            if kind is not bool:
                raise NoFastPath
            return (bool, lambda v: not operand(v))
        return self.member()

    def member(self) -> _Node:
        node = self.primary()
        while self.peek() in (".", "["):
            if self.take()[1] == "[":  # a tag: a missing key raises, and the library decides
                index = self.logical("||")
                self.take("]")
                if node[0] is not dict or index[0] is not str:
                    raise NoFastPath
                tags, key = node[1], index[1]
                node = (str, lambda v, tags=tags, key=key: tags(v)[key(v)])
                continue
            kind, name = self.take()
            if kind != "name":
                raise NoFastPath
            self.take("(")
            arguments = self.arguments()
            node = self.method(node, name, arguments)
        return node

    def arguments(self) -> list[_Node]:
        found: list[_Node] = []
        if self.peek() == ")":
            self.take()
            return found
        while True:
            found.append(self.logical("||"))
            if self.take()[1] == ")":
                return found
            if self.tokens[self.position - 1][1] != ",":
                raise NoFastPath

    def method(self, target: _Node, name: str, arguments: list[_Node]) -> _Node:
        kind, get = target
        if kind is str and name in _STRING_TESTS and len(arguments) == 1:
            if arguments[0][0] is not str:
                raise NoFastPath
            test, argument = _STRING_TESTS[name], arguments[0][1]
            return (bool, lambda v: test(get(v), argument(v)))
        # Only the zoned form: it calls the same Python accessor the library calls.
        if kind is dt.datetime and name in TIMESTAMP_ACCESSORS and len(arguments) == 1:
            if arguments[0][0] is not str:
                raise NoFastPath
            accessor, zone = TIMESTAMP_ACCESSORS[name], arguments[0][1]
            return (int, lambda v: accessor(get(v), zone(v)))
        raise NoFastPath

    def primary(self) -> _Node:
        kind, text = self.take()
        if kind == "int":
            value = int(text)
            if value > _INT64[1]:
                raise NoFastPath
            return (int, lambda v: value)
        if kind == "str":
            literal = text[1:-1]
            return (str, lambda v: literal)
        if text == "(":
            node = self.logical("||")
            self.take(")")
            return node
        if kind != "name":
            raise NoFastPath
        if text in ("true", "false"):
            flag = text == "true"
            return (bool, lambda v: flag)
        if text == "ip_in_range" and self.peek() == "(":
            self.take()
            arguments = self.arguments()
            if len(arguments) != 2 or any(node[0] is not str for node in arguments):
                raise NoFastPath
            (_, ip), (_, cidr) = arguments
            return (bool, lambda v: ip_in_range(ip(v), cidr(v)))
        if text in ROOTS and self.peek() == ".":
            self.take()
            field_kind, attribute = self.take()
            name = f"{text}.{attribute}"
            if field_kind != "name" or name not in VARIABLES or self.peek() == "(":
                raise NoFastPath
            expected = _TYPE_OF_FIELD[name]
            checked = _CHECKED_TYPE.get(expected, expected)

            def read(v: Mapping[str, Any]) -> Any:
                value = v[name]
                if not isinstance(value, checked):
                    raise TypeError(name)  # not what the library would see: it decides
                return value

            return (expected, read)
        raise NoFastPath


def fast_path(source: str) -> Callable[[Mapping[str, Any]], bool] | None:
    """A Python closure computing `source` from the values mapping, or None."""
    if "//" in source:
        return None  # comments: keep the tokenizer simple
    try:
        _, function = FastParser(source).parse()
    except (NoFastPath, RecursionError):
        return None
    return function
