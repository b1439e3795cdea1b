"""The operators' admin site: staff verified with an authenticator, signed in by one form.

django-otp's admin form asks which device a code is for, and only on the page that
refuses the first try (it will not try a code on each device: the misses would throttle
the others). Here the code's shape picks the device, as the portal's second step does:
six digits are the authenticator's, anything else a backup code. `accounts.mfa.check_code`
checks it through django-otp (replay protection, throttling) and audits a wrong code.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp.admin import OTPAdminSite

from accounts.forms import CanonicalEmailField
from accounts.mfa import check_code, has_mfa

NO_AUTHENTICATOR = (
    "This account has no authenticator app. Set one up on the portal's two-step "
    "verification page (Your account → Two-step verification), then sign in here."
)


class OperatorAuthenticationForm(AdminAuthenticationForm):
    """Email, password and a code from the authenticator app (or a backup code)."""

    username = CanonicalEmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    otp_token = forms.CharField(
        label="Authentication code",
        max_length=64,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )

    def clean(self) -> dict[str, Any]:
        # The password (and staff status) first: no code is checked for a wrong password.
        cleaned = super().clean()
        user = self.get_user()
        if user is None or "otp_token" not in cleaned:
            return cleaned
        if not has_mfa(user):
            raise forms.ValidationError(NO_AUTHENTICATOR, code="no_authenticator")
        result = check_code(user, cleaned["otp_token"], request=self.request)
        if not result.ok:
            self.add_error("otp_token", result.error)
            return cleaned
        user.otp_device = result.device  # django-otp keeps it in the session at login
        return cleaned


class OperatorAdminSite(OTPAdminSite):
    """django-otp's admin site (only OTP-verified staff) with the one-form sign-in."""

    login_form = OperatorAuthenticationForm
    login_template = "admin/operator_login.html"
