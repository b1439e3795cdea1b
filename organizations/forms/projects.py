"""Forms of projects."""

from __future__ import annotations

from django import forms

from organizations.models import Organization, Project


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
