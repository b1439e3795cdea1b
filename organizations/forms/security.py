"""Forms of the security settings."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from organizations.models import AUDIT_RETENTION_MIN_DAYS, Organization
from organizations.services.security import SECURITY_FIELDS

# A DNS name with at least one dot: labels of letters, digits and inner hyphens.
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


MAX_DOMAINS = 50


def parse_domains(text: str) -> list[str]:
    """Domains separated by commas, spaces or lines; lowercased, deduplicated, in order.

    Raises ValidationError naming every entry that is not a domain.
    """
    seen: list[str] = []
    bad: list[str] = []
    for raw in re.split(r"[\s,;]+", text or ""):
        entry = raw.strip().lower().lstrip("@").rstrip(".")
        if not entry:
            continue
        if not _DOMAIN.match(entry):
            bad.append(raw.strip())
        elif entry not in seen:
            seen.append(entry)
    if bad:
        raise forms.ValidationError(
            "Not a domain name: %(bad)s. Enter domains like example.com, one per line or "
            "separated by commas.",
            params={"bad": ", ".join(bad[:5])},
        )
    if len(seen) > MAX_DOMAINS:
        raise forms.ValidationError(f"Enter at most {MAX_DOMAINS} domains.")
    return seen


class SecuritySettingsForm(forms.ModelForm):
    invitation_domains = forms.CharField(
        label="Invitation email domains",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            "Invitations may only go to addresses in these domains, one per line or "
            "separated by commas (example.com). Empty: any address."
        ),
    )

    class Meta:
        model = Organization
        fields = list(SECURITY_FIELDS)
        labels = {
            "mfa_required": "Require MFA for every member",
            "mfa_grace_days": "Grace period (days)",
        }
        help_texts = {
            "mfa_required": (
                "Members without an authenticator app see a banner until the grace period "
                "ends, then cannot open this organization's pages until they set one up."
            ),
            "mfa_grace_days": "0 to 90. Counted from when MFA is switched on or the member joins.",
            "login_failure_limit": (
                "3 to 20 wrong passwords in 15 minutes pause a member's sign-in for 15 "
                "minutes. A person in several organizations gets the smallest limit."
            ),
            "session_max_age_hours": (
                "1 to 720. Older sessions are signed out when they open this organization. "
                "No session outlives the platform's own limit (12 hours unless its operators "
                "changed it)."
            ),
            "api_key_max_lifetime_days": (
                "1 to 3650. Keys older than this stop working. Empty: keys may never expire."
            ),
            "disable_unused_after_days": (
                "7 to 3650. API keys not used, and members (never owners) not signed in, "
                "for this many days are disabled or suspended, each recorded in the audit "
                "trail and reversible. Empty: never."
            ),
            "audit_retention_days": (
                f"{AUDIT_RETENTION_MIN_DAYS} to 3650. Older audit events are purged."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["invitation_domains"] = "\n".join(self.instance.invitation_domains or [])
        for name in ("mfa_grace_days", "login_failure_limit", "session_max_age_hours"):
            self.fields[name].widget.attrs.setdefault("inputmode", "numeric")

    def clean_invitation_domains(self) -> list[str]:
        return parse_domains(self.cleaned_data.get("invitation_domains") or "")
