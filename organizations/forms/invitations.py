"""Forms of invitations: inviting, and creating an account from a link."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.urls import reverse

from accounts.models import User
from iamportal.widgets import SearchPickMultiple
from organizations.models import Group, Invitation, Organization
from organizations.services.invitations import (
    MAX_INVITATION_INPUT_CHARS,
    MAX_INVITATIONS_AT_ONCE,
    parse_emails,
)


class _GroupsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Group) -> str:
        return obj.name


def groups_field() -> _GroupsField:
    """The organization's groups as a search picker: searched, never listed whole (set the
    widget's `search_url`)."""
    return _GroupsField(
        queryset=Group.objects.none(),
        required=False,
        widget=SearchPickMultiple(placeholder="Type a group name"),
        help_text="Optional: they join these groups too.",
        error_messages={"invalid_choice": "Choose groups of this organization."},
    )


class InviteForm(forms.Form):
    emails = forms.CharField(
        label="Email addresses",
        # Checked before the addresses are parsed.
        max_length=MAX_INVITATION_INPUT_CHARS,
        error_messages={
            "max_length": f"Paste at most {MAX_INVITATION_INPUT_CHARS:,} characters: "
            f"invite up to {MAX_INVITATIONS_AT_ONCE} people at a time."
        },
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "ada@example.com, grace@example.com"}
        ),
        help_text=f"One or several, separated by commas or new lines (at most "
        f"{MAX_INVITATIONS_AT_ONCE}).",
    )
    role = forms.ChoiceField(
        label="Role",
        choices=[
            ("", "None: only the groups and policies you give"),
            ("tech", "Tech: manage projects and resources (TechAccess)"),
            ("billing", "Billing: invoices and billing contact (BillingAccess)"),
            ("readonly", "Read-only: see everything but billing and audit (ReadOnlyAccess)"),
            ("owner", "Owner: full access"),
        ],
        required=False,
    )
    groups = groups_field()

    def __init__(self, *args: object, organization: Organization, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = organization.groups.order_by("name")
        self.fields["groups"].widget.search_url = reverse(
            "organizations:pick_invitation_groups", args=[organization.pk]
        )

    def clean_emails(self) -> list[str]:
        valid, invalid = parse_emails(self.cleaned_data["emails"])
        if invalid:
            raise forms.ValidationError(
                [f"{address!r} is not a valid email address." for address in invalid]
            )
        if not valid:
            raise forms.ValidationError("Enter at least one email address.")
        return valid

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        if role not in Invitation.Role.values:
            raise forms.ValidationError("Choose one of the offered roles.")
        return role


class InvitationSignupForm(forms.Form):
    """A new account for the invited address (the address comes from the invitation)."""

    full_name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
        strip=False,
    )

    def __init__(self, *args: object, email: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned
