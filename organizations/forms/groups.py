"""Forms of groups."""

from __future__ import annotations

from django import forms

from organizations.models import Group


class GroupForm(forms.ModelForm):
    class Meta:
        model = Group
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"name": "Unique in the organization; up to 64 characters."}
