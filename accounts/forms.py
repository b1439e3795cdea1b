from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm

from accounts.emails import canonical_email
from accounts.models import User
from organizations.services.organizations import organization_name_clean


class CanonicalEmailField(forms.EmailField):
    """An email field whose value is the canonical address (accounts.emails)."""

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        return canonical_email(value) if value else value


class EmailAuthenticationForm(AuthenticationForm):
    username = CanonicalEmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        # Same words whether the account exists or not: sign-in must not reveal accounts.
        "invalid_login": "The email or password is not correct.",
        "inactive": "The email or password is not correct.",
    }


class SignupForm(forms.Form):
    full_name = forms.CharField(
        label="Your name", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    email = CanonicalEmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
        strip=False,
    )
    organization_name = forms.CharField(
        label="Organization name",
        max_length=100,
        help_text="Your company or team. You can rename it later.",
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError(
                "An account with this email already exists. Sign in or reset your password."
            )
        return email

    def clean_organization_name(self) -> str:
        # The organization services' own check: control characters refused, one length.
        return organization_name_clean(self.cleaned_data["organization_name"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class CanonicalPasswordResetForm(PasswordResetForm):
    """Django's reset form, matching the canonical address exactly."""

    email = CanonicalEmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def get_users(self, email: str) -> Iterator[User]:
        users = User.objects.filter(email=email, is_active=True)
        return (user for user in users if user.has_usable_password())


class CodeForm(forms.Form):
    """A code from the authenticator app, or a backup code."""

    code = forms.CharField(
        label="Authentication code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
        help_text="The 6-digit code from your authenticator app, or a backup code.",
    )


class EnrollForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
        help_text="Enter the 6-digit code the app shows for IAM Portal.",
    )


class ConfirmForm(forms.Form):
    """Confirm it is you: the password, or a code when an authenticator is set up."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    code = forms.CharField(
        label="Or a code from your authenticator app",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, with_code: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_code:
            del self.fields["code"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("password") and not cleaned.get("code"):
            raise forms.ValidationError(
                "Enter your password" + (" or a code." if "code" in self.fields else ".")
            )
        return cleaned
