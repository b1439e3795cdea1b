"""The small part of the SCIM filter grammar (RFC 7644 §3.4.2.2) identity providers use:
`attr eq "value"` joined by `and`, and PATCH paths (`name.givenName`,
`emails[type eq "work"].value`, `members[value eq "id"]`).

Attribute names and operators are case-insensitive, as the RFC says; values are JSON
literals (strings, true, false, null).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from scim.errors import ScimError

MAX_FILTER_LENGTH = 1000

_ATTR = r"[A-Za-z][\w$-]*(?:\.[A-Za-z][\w$-]*)?"
_URN = r"urn:[\w.:-]+:"  # a schema URN before an attribute, e.g. the enterprise extension
_VALUE = r'"(?:[^"\\]|\\.)*"|true|false|null'
_COMPARISON = re.compile(
    rf"\s*((?:{_URN})?{_ATTR})\s+(eq)\s+({_VALUE})\s*", re.IGNORECASE | re.DOTALL
)
_CORE_URNS = (
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
)
_AND = re.compile(r"and\b", re.IGNORECASE)
_PATH = re.compile(
    r"([A-Za-z][\w$-]*)(?:\.([A-Za-z][\w$-]*))?(?:\[(.+)\])?(?:\.([A-Za-z][\w$-]*))?", re.DOTALL
)


@dataclass(frozen=True)
class Comparison:
    attribute: str  # lower-cased, without a core-schema URN
    value: str | bool | None


@dataclass(frozen=True)
class Path:
    """`attribute[filter].sub_attribute`, e.g. `emails`, [type eq "work"], `value`."""

    attribute: str  # lower-cased; for `name.givenName`: "name" with sub "givenname"
    filter: tuple[Comparison, ...] = ()
    sub_attribute: str = ""


def _invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def _attribute(name: str) -> str:
    """Lower-cased, with a core schema's URN dropped (`urn:...:core:2.0:User:userName`)."""
    name = name.lower()
    for core in _CORE_URNS:
        if name.startswith(core):
            return name[len(core) :]
    return name


def _literal(text: str) -> str | bool | None:
    try:
        value = json.loads(text.lower() if text[0] != '"' else text)
    except ValueError:
        raise _invalid_filter(f"Cannot read the value {text[:40]!r}.") from None
    if isinstance(value, str) and "\x00" in value:  # no database stores it
        raise _invalid_filter("A value cannot hold a NUL character.")
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # JSON's \ud800 escapes decode to lone surrogates
        except UnicodeEncodeError:
            raise _invalid_filter("A value must be valid Unicode (no lone surrogates).") from None
    return value


def parse_filter(text: str) -> tuple[Comparison, ...]:
    """`userName eq "a@b.c" and active eq true` as comparisons, all of which must hold.

    Anything else (other operators, `or`, `not`, groupings) is refused with invalidFilter."""
    if len(text) > MAX_FILTER_LENGTH:
        raise _invalid_filter(f"A filter is at most {MAX_FILTER_LENGTH} characters.")
    comparisons: list[Comparison] = []
    position = 0
    while True:
        match = _COMPARISON.match(text, position)
        if match is None:
            raise _invalid_filter(
                'Only filters of the form `attribute eq "value"` (joined by `and`) are supported.'
            )
        attribute, _, value = match.groups()
        comparisons.append(Comparison(_attribute(attribute), _literal(value)))
        position = match.end()
        if position == len(text):
            return tuple(comparisons)
        joined = _AND.match(text, position)
        if joined is None:
            raise _invalid_filter(
                'Only filters of the form `attribute eq "value"` (joined by `and`) are supported.'
            )
        position = joined.end()


def parse_path(text: str) -> Path:
    """A PATCH operation's path; invalidPath when it is not one."""
    if len(text) > MAX_FILTER_LENGTH:
        raise ScimError(400, "A path is at most 1000 characters.", "invalidPath")
    text = text.strip()
    urn = ""
    if text[:4].lower() == "urn:":
        # `urn:...:2.0:User:attribute`: the schema ends at the last colon before any filter.
        urn = text.split("[", 1)[0].rpartition(":")[0] + ":"
        text = text[len(urn) :]
    match = _PATH.fullmatch(text)
    if match is None:
        raise ScimError(400, f"Cannot read the path {text[:80]!r}.", "invalidPath")
    attribute, dotted, value_filter, sub_attribute = match.groups()
    if dotted and (value_filter or sub_attribute):
        raise ScimError(400, f"Cannot read the path {text[:80]!r}.", "invalidPath")
    attribute = _attribute(urn + attribute)
    sub_attribute = dotted or sub_attribute
    try:
        comparisons = parse_filter(value_filter) if value_filter else ()
    except ScimError as error:
        raise ScimError(400, error.detail, "invalidPath") from None
    return Path(attribute, comparisons, (sub_attribute or "").lower())
