"""The filter and PATCH path grammar identity providers use."""

from __future__ import annotations

import pytest

from scim.errors import ScimError
from scim.filters import MAX_FILTER_LENGTH, Comparison, Path, parse_filter, parse_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ada@example.com"', (Comparison("username", "ada@example.com"),)),
        ('USERNAME EQ "Ada@Example.com"', (Comparison("username", "Ada@Example.com"),)),
        ('displayName eq "Finance team"', (Comparison("displayname", "Finance team"),)),
        ('externalId eq "a\\"b"', (Comparison("externalid", 'a"b'),)),
        (
            'userName eq "a@b.c" and active eq true',
            (Comparison("username", "a@b.c"), Comparison("active", True)),
        ),
        (
            'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@b.c"',
            (Comparison("username", "a@b.c"),),
        ),
        ('emails.value eq "a@b.c"', (Comparison("emails.value", "a@b.c"),)),
    ],
)
def test_filters_read(text: str, expected: tuple[Comparison, ...]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'userName sw "ada"',
        'userName eq "a" or userName eq "b"',
        'not (userName eq "a")',
        "userName eq ada",
        'userName eq "unterminated',
        "",
        'userName eq "a" and',
        "x" * (MAX_FILTER_LENGTH + 1),
    ],
)
def test_other_filters_are_refused_as_invalid(text: str) -> None:
    with pytest.raises(ScimError) as refused:
        parse_filter(text)
    assert (refused.value.status, refused.value.scim_type) == (400, "invalidFilter")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("active", Path("active")),
        ("name.givenName", Path("name", (), "givenname")),
        ('emails[type eq "work"].value', Path("emails", (Comparison("type", "work"),), "value")),
        ('members[value eq "2819c223"]', Path("members", (Comparison("value", "2819c223"),))),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName", Path("username")),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            Path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department"),
        ),
    ],
)
def test_paths_read(text: str, expected: Path) -> None:
    assert parse_path(text) == expected


@pytest.mark.parametrize("text", ["", "name.givenName.x", 'a.b[x eq "1"]', "members[", "1abc"])
def test_bad_paths_are_refused(text: str) -> None:
    with pytest.raises(ScimError) as refused:
        parse_path(text)
    assert (refused.value.status, refused.value.scim_type) == (400, "invalidPath")
