from __future__ import annotations

from typing import Any

from django import forms

from accounts.forms import CanonicalEmailField
from federation.models import DEFAULT_SCOPES, ClaimRule
from organizations.models import Group, Organization


class SSOStartForm(forms.Form):
    email = CanonicalEmailField(
        label="Work email",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="Your organization's identity provider is found from its domain.",
    )


class ProviderForm(forms.Form):
    name = forms.CharField(max_length=64, help_text='Shown as "Sign in with …".')
    issuer = forms.URLField(
        label="Issuer URL",
        max_length=255,
        assume_scheme="https",
        help_text="Its discovery document is read from <issuer>/.well-known/openid-configuration.",
    )
    client_id = forms.CharField(label="Client ID", max_length=255)
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; never shown again.",
    )
    domains = forms.CharField(
        label="Allowed email domains",
        help_text="Comma-separated, e.g. example.com, example.org; a domain has one provider.",
    )
    scopes = forms.CharField(max_length=255, initial=DEFAULT_SCOPES)
    accept_provider_mfa = forms.BooleanField(
        label="Accept the provider's MFA",
        required=False,
        help_text="When the ID token says a second factor was used (amr/acr), "
        "skip the console's code.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["client_secret"].help_text = "Leave blank to keep the stored secret."

    def clean_domains(self) -> list[str]:
        return [part for part in self.cleaned_data["domains"].split(",") if part.strip()]


class ClaimRuleForm(forms.Form):
    claim = forms.CharField(max_length=64, initial="groups")
    operator = forms.ChoiceField(choices=ClaimRule.Operator.choices)
    value = forms.CharField(max_length=255)
    # Typed, not a select: an organization may have thousands of groups.
    group = forms.CharField(label="Group name", max_length=64)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_group(self) -> Group:
        group = self.organization.groups.filter(name=self.cleaned_data["group"].strip()).first()
        if group is None:
            raise forms.ValidationError("No group of this organization has this name.")
        return group


class SSORequiredForm(forms.Form):
    sso_required = forms.BooleanField(
        label="Require single sign-on",
        required=False,
        help_text="Members the organization manages sign in through the provider only; "
        "owners keep password and authenticator code; guests keep their own accounts.",
    )
