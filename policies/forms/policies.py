"""Forms of policies."""

from __future__ import annotations

from typing import Any

from django import forms

from policies.models import Policy


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=128, help_text="Unique in the organization.")
    description = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    labels = forms.CharField(
        max_length=1000, required=False, help_text="Comma-separated, e.g. team-a, production."
    )

    @classmethod
    def for_policy(cls, policy: Policy, data: Any = None) -> PolicyForm:
        initial = {
            "name": policy.name,
            "description": policy.description,
            "labels": ", ".join(policy.labels),
        }
        return cls(data, initial=initial)

    def clean_labels(self) -> list[str]:
        return [label.strip() for label in self.cleaned_data["labels"].split(",") if label.strip()]
