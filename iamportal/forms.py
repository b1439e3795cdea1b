"""Form helpers every app's views share: a service's errors on a form, and the one
"type the name to confirm" form of destructive actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.forms import BaseForm

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Saved(Generic[T]):
    """A write that went through; `value` is what the service returned."""

    value: T


def save_form(form: BaseForm, write: Callable[[dict[str, Any]], T]) -> Saved[T] | None:
    """Validate `form` and hand its cleaned data to `write` (a service call): the shape of
    every form view. None when the form or the service refused; the service's
    ValidationError is then on the form, per field when it names one."""
    if not form.is_valid():
        return None
    try:
        return Saved(write(form.cleaned_data))
    except ValidationError as error:
        apply_errors(form, error)
        return None


def apply_errors(form: BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field when it names one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


# The posted field's name where the service takes the typed name itself (projects and
# applications check it again, for callers without a form).
CONFIRM_NAME = "confirm_name"


class ConfirmNameForm(forms.Form):
    """Destructive actions ask to type the name of what goes (a project, an application,
    a group, a person's email) exactly, surrounding spaces aside: the comparison the
    services that check it again (projects, applications) make.

    `field` is the posted field's name (`confirm`, or `confirm_name` where the service
    takes the typed name itself); `what` names the thing in the label and the error.
    """

    def __init__(self, *args: Any, expected: str, what: str, field: str = "confirm", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.expected, self.field_name, self.what = expected, field, what
        self.fields[field] = forms.CharField(label=f"Type the {what} to confirm", max_length=254)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.field_name in cleaned and cleaned[self.field_name].strip() != self.expected:
            self.add_error(self.field_name, f"Type the {self.what} exactly to confirm.")
        return cleaned
