"""Forms of API keys."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet

from organizations.models import Application, Membership, Project
from policies.forms.attachments import ModelPickField

SELF = "self"


class APIKeyForm(forms.Form):
    """Bearer (yourself or an application), description, expiry and default project."""

    bearer = forms.ChoiceField(label="Bearer", help_text="The key holds exactly its permissions.")
    description = forms.CharField(
        max_length=200, required=False, help_text="What the key is for, e.g. “CI deploys”."
    )
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The key stops working at 00:00 UTC that day. Empty: it never expires.",
    )
    default_project = ModelPickField(
        queryset=Project.objects.none(),
        required=False,
        empty_label="No default project",
        help_text="The project API calls use when they name none.",
    )

    def __init__(
        self,
        *args: Any,
        membership: Membership,
        applications: QuerySet[Application],
        projects: QuerySet[Project],
        expiry_limit: datetime.date | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._applications = {str(app.pk): app for app in applications}
        self._membership = membership
        choices: list[Any] = [(SELF, f"Yourself ({membership.user.email})")]
        if self._applications:
            choices.append(
                ("Applications", [(pk, app.name) for pk, app in self._applications.items()])
            )
        self.fields["bearer"].choices = choices
        self.fields["bearer"].error_messages["invalid_choice"] = (
            "Choose yourself or an application of this organization: nobody creates keys "
            "for another person."
        )
        self.fields["default_project"].queryset = projects
        self.fields["default_project"].error_messages["invalid_choice"] = (
            "Choose a project of this organization."
        )
        if expiry_limit is not None:
            field = self.fields["expires_on"]
            field.required = True
            field.error_messages["required"] = (
                f"This organization requires API keys to expire: choose a date until "
                f"{expiry_limit.isoformat()}."
            )
            field.widget.attrs["max"] = expiry_limit.isoformat()
            field.help_text = (
                f"The key stops working at 00:00 UTC that day; at the latest "
                f"{expiry_limit.isoformat()} (the organization's maximum key lifetime)."
            )
            self.initial.setdefault("expires_on", expiry_limit)

    def clean_bearer(self) -> Membership | Application:
        value = self.cleaned_data["bearer"]
        if value == SELF:
            return self._membership
        return self._applications[value]
