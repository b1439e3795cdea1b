"""The tags editor of principals (users, applications): key / value rows.

Rows rather than a `key=value` text, because a key may itself hold "=" (organizations/
tags.py): a text could not show such a tag and read it back unchanged. The rows only shape
the tags; `organizations.tags.check_tags` (run by the services) is their one set of rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from organizations.tags import TAG_VALUE_MAX_LENGTH, TAGS_MAX

# Empty rows offered beyond the current tags (save to get more).
EXTRA_ROWS = 3


class TagRowForm(forms.Form):
    key = forms.CharField(label="Key", required=False, max_length=64)
    value = forms.CharField(label="Value", required=False, max_length=TAG_VALUE_MAX_LENGTH)


class BaseTagsFormSet(forms.BaseFormSet):
    """The rows; once valid, `tags` is what they say (empty rows skipped)."""

    tags: dict[str, str]

    def clean(self) -> None:
        self.tags = {}
        if any(self.errors):
            return
        problems = []
        for number, form in enumerate(self.forms, start=1):
            key = form.cleaned_data.get("key", "")
            value = form.cleaned_data.get("value", "")
            if not key and not value:
                continue
            if not key:
                problems.append(f"Row {number}: enter a key for the value “{value}”.")
            elif key in self.tags:
                problems.append(f"Row {number}: the key “{key}” is already used above.")
            else:
                self.tags[key] = value
        if problems:
            raise ValidationError(problems)

    def add_service_error(self, error: ValidationError) -> None:
        """Show a service's refusal (a tag rule, the owner rule, the delegation ceiling)
        above the rows."""
        self.non_form_errors().extend(error.messages)


TagsFormSet = forms.formset_factory(
    TagRowForm,
    formset=BaseTagsFormSet,
    extra=EXTRA_ROWS,
    max_num=TAGS_MAX,
    # A few more than the limit can be posted, so the limit's own message is shown.
    absolute_max=TAGS_MAX + EXTRA_ROWS,
)


def tags_formset(tags: Mapping[str, str], data: Any = None) -> BaseTagsFormSet:
    """The editor of `tags`, bound to `data` when posted (posted rows are kept on errors)."""
    initial = [{"key": key, "value": value} for key, value in sorted(tags.items())]
    return TagsFormSet(data, initial=initial, prefix="tags")
