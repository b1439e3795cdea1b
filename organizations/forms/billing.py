"""Forms of billing."""

from __future__ import annotations

from django import forms

from organizations.models import BillingContact


class BillingContactForm(forms.ModelForm):
    class Meta:
        model = BillingContact
        fields = ["name", "email", "company", "address", "country", "vat_number"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}
        labels = {"name": "Contact name", "email": "Invoice email"}
