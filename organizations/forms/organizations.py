"""Forms of the organization's profile."""

from __future__ import annotations

from django import forms

from organizations.models import Organization
from organizations.services.organizations import organization_name_clean


class OrganizationNameForm(forms.ModelForm):
    """Checks the name as the services do (also the admin's form)."""

    def clean_name(self) -> str:
        return organization_name_clean(self.cleaned_data["name"])


class OrganizationForm(OrganizationNameForm):
    class Meta:
        model = Organization
        fields = ["name"]
        labels = {"name": "Organization name"}
