from __future__ import annotations

from typing import Any

from django import forms

from accounts.forms import CanonicalEmailField
from federation.models import DEFAULT_SCOPES, ClaimRule, IdentityProvider
from organizations.models import Group, Organization


class SSOStartForm(forms.Form):
    email = CanonicalEmailField(
        label="Work email",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="Your organization's identity provider is found from its domain.",
    )


class ProviderForm(forms.Form):
    kind = forms.ChoiceField(
        label="Protocol",
        choices=IdentityProvider.Kind.choices,
        initial=IdentityProvider.Kind.OIDC,
        required=False,  # OpenID Connect when not said
        help_text="Fill in the fields of this protocol below; it cannot change later.",
    )
    name = forms.CharField(max_length=64, help_text='Shown as "Sign in with …".')
    domains = forms.CharField(
        label="Allowed email domains",
        help_text="Comma-separated, e.g. example.com, example.org; each is verified by a DNS "
        "TXT record before its people sign in here.",
    )
    issuer = forms.URLField(
        label="OpenID Connect: issuer URL",
        max_length=255,
        required=False,
        assume_scheme="https",
        help_text="Its discovery document is read from <issuer>/.well-known/openid-configuration.",
    )
    client_id = forms.CharField(label="OpenID Connect: client ID", max_length=255, required=False)
    client_secret = forms.CharField(
        label="OpenID Connect: client secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; never shown again.",
    )
    scopes = forms.CharField(
        label="OpenID Connect: scopes", max_length=255, required=False, initial=DEFAULT_SCOPES
    )
    saml_metadata_url = forms.URLField(
        label="SAML: IdP metadata URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Read when you save (and by Test); or paste the metadata below.",
    )
    saml_metadata_xml = forms.CharField(
        label="SAML: IdP metadata XML",
        required=False,
        max_length=256 * 1024,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    saml_email_attribute = forms.CharField(
        label="SAML: email attribute",
        max_length=255,
        required=False,
        initial="email",
        help_text="The attribute with the address; else a NameID of emailAddress format.",
    )
    accept_provider_mfa = forms.BooleanField(
        label="Accept the provider's MFA",
        required=False,
        help_text="When the provider says a second factor was used (OpenID amr/acr, SAML "
        "authentication context), skip the console's code.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, provider: IdentityProvider | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if provider is None:
            return
        del self.fields["kind"]  # a provider keeps its protocol
        if provider.kind == IdentityProvider.Kind.SAML:
            for name in ("issuer", "client_id", "client_secret", "scopes"):
                del self.fields[name]
            self.fields["saml_metadata_url"].help_text = "Read again when you save."
            self.fields["saml_metadata_xml"].help_text = "Leave blank to keep the stored metadata."
        else:
            for name in ("saml_metadata_url", "saml_metadata_xml", "saml_email_attribute"):
                del self.fields[name]
            self.fields["client_secret"].help_text = "Leave blank to keep the stored secret."

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or IdentityProvider.Kind.OIDC

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
