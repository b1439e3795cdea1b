"""Form widgets shared by the apps."""

from __future__ import annotations

import html
from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def _escape(value: Any) -> str:
    # django.utils.html.conditional_escape without its lazy-string wrapper, which cost
    # most of this widget's time.
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


class LongSelect(forms.Select):
    """A `<select>` written in Python, with the markup of Django's. Django renders one
    template per option, which for the few hundred principals and event types of the audit
    filter cost 10-15 ms a page."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(f'<optgroup label="{_escape(group_name)}">')
            for option in options:
                value = "" if option["value"] is None else option["value"]
                extra = flatatt(option["attrs"]) if option["attrs"] else ""
                parts.append(
                    f'<option value="{_escape(value)}"{extra}>{_escape(option["label"])}</option>'
                )
            if group_name:
                parts.append("</optgroup>")
        return format_html(
            '<select name="{}"{}>{}</select>',
            widget["name"],
            flatatt(widget["attrs"]),
            mark_safe("".join(parts)),  # noqa: S308 - every value above is escaped
        )
