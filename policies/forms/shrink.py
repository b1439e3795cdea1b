"""The form of "Shrink to used" (#16): the narrowed policy's name, and the window."""

from __future__ import annotations

from django import forms

from policies.models import Policy

MAX_DAYS = 3650


class ShrinkForm(forms.Form):
    name = forms.CharField(
        label="Name of the narrowed policy",
        max_length=Policy._meta.get_field("name").max_length,
    )
    days = forms.IntegerField(min_value=1, max_value=MAX_DAYS, widget=forms.HiddenInput)
