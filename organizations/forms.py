from __future__ import annotations

from django import forms

from organizations.models import BillingContact, Organization, Project
from organizations.services import organization_name_clean


class OrganizationNameForm(forms.ModelForm):
    """Checks the name as the services do (also the admin's form)."""

    def clean_name(self) -> str:
        return organization_name_clean(self.cleaned_data["name"])


class OrganizationForm(OrganizationNameForm):
    class Meta:
        model = Organization
        fields = ["name"]
        labels = {"name": "Organization name"}


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"name": "Unique in the organization; up to 64 characters."}

    def __init__(self, *args: object, organization: Organization, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Set before validation so the model's unique (organization, name) check applies.
        self.instance.organization = organization


class ProjectDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the project name to confirm", max_length=64)


class BillingContactForm(forms.ModelForm):
    class Meta:
        model = BillingContact
        fields = ["name", "email", "company", "address", "country", "vat_number"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}
        labels = {"name": "Contact name", "email": "Invoice email"}
