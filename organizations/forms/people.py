"""Forms of people."""

from __future__ import annotations

from django import forms

from organizations.forms.invitations import groups_field
from organizations.models import Organization


class MemberCreateForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150)
    email = forms.EmailField(label="Email", max_length=254)
    groups = groups_field()

    def __init__(self, *args: object, organization: Organization, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = organization.groups.order_by("name")
