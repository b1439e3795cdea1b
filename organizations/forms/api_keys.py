"""Forms of API keys."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.urls import reverse

from iamportal.widgets import SearchPick, chosen_of
from organizations.models import Application, Membership, Project
from policies.forms.attachments import ModelPickField

SELF = "self"


class APIKeyForm(forms.Form):
    """Bearer (yourself or an application), description, expiry and default project."""

    # Yourself, or an application found by searching (never a list of every application).
    bearer = forms.CharField(
        label="Bearer",
        help_text="The key holds exactly its permissions.",
        widget=SearchPick(placeholder="Or type an application name"),
    )
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
        help_text="The project API calls use when they name none.",
        widget=SearchPick(placeholder="Type a project name"),
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
        self._applications = applications
        self._membership = membership
        organization_id = membership.organization_id
        bearer = self.fields["bearer"].widget
        bearer.fixed = [(SELF, f"Yourself ({membership.user.email})")]
        bearer.queryset = applications
        bearer.search_url = reverse("organizations:pick_key_applications", args=[organization_id])
        self.initial.setdefault("bearer", SELF)
        self.fields["default_project"].queryset = projects
        project = self.fields["default_project"].widget
        project.fixed = [("", "No default project")]
        project.search_url = reverse("organizations:pick_key_projects", args=[organization_id])
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
        # An application of the organization (the queryset is scoped to it), else refused.
        application = chosen_of(self._applications, [value])
        if not application:
            raise forms.ValidationError(
                "Choose yourself or an application of this organization: nobody creates keys "
                "for another person.",
                code="invalid_choice",
            )
        return application[0]
