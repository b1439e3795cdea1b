from __future__ import annotations

from django import forms
from django.test.html import parse_html
from django.utils.safestring import mark_safe

from iamportal.widgets import LongSelect

CHOICES = [
    ("", "Anyone"),
    ("system", "System <no principal>"),
    ("Users & co", [("user:1", 'ada "the first" <ada@example.com>'), ("user:2", "bob")]),
    ("Safe", [("x", mark_safe("<b>bold</b>"))]),
]


def test_long_select_writes_the_markup_of_django_select_and_escapes_like_it() -> None:
    attrs = {"id": "id_principal", "hx-get": "/a?b=1&c=2", "required": True}
    for value in ("", "user:1", "x", "unlisted"):
        ours = LongSelect(choices=CHOICES).render("principal", value, attrs)
        django = forms.Select(choices=CHOICES).render("principal", value, attrs)
        assert parse_html(ours) == parse_html(django), value
    rendered = LongSelect(choices=CHOICES).render("principal", "user:1")
    assert "&lt;ada@example.com&gt;" in rendered and "<ada@" not in rendered
    assert 'optgroup label="Users &amp; co"' in rendered
    assert '<option value="user:1" selected>' in rendered
