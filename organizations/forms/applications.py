"""Forms of applications."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from organizations.models import Application, Group
from policies.forms.attachments import ModelPickField


class ApplicationForm(forms.Form):
    name = forms.CharField(
        max_length=64, help_text="Unique in the organization; up to 64 characters."
    )
    description = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    @classmethod
    def for_application(
        cls, application: Application, data: Any = None, **kwargs: Any
    ) -> ApplicationForm:
        initial = {"name": application.name, "description": application.description}
        return cls(data, initial=initial, **kwargs)


class GroupPickForm(forms.Form):
    """One group to add the application to, among those it is not in."""

    group = ModelPickField(
        label="Group", queryset=Group.objects.none(), empty_label="Choose a group"
    )

    def __init__(self, *args: Any, groups: QuerySet[Group], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups
        self.fields["group"].error_messages["invalid_choice"] = (
            "Choose a group of this organization that the application is not in yet."
        )
