from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from iamportal.fragments import link
from policies.authz import can

# name in the template: (URL name, permission that shows it; "" = every member).
NAV_LINKS: dict[str, tuple[str, str]] = {
    # The sidebar (base.html).
    "dashboard": ("organizations:dashboard", ""),
    "projects": ("organizations:project_list", "projects:projects:list"),
    "iam": ("organizations:user_list", "iam:users:list"),
    "billing": ("organizations:invoice_list", "billing:invoices:list"),
    "audit": ("audit:event_list", "audit:events:list"),
    "settings": ("organizations:settings", "organization:organization:update"),
    "security": ("organizations:security_settings", "organization:security:read"),
    # The IAM tabs (organizations/iam/_tabs.html).
    "users": ("organizations:user_list", "iam:users:list"),
    "invitations": ("organizations:invitation_list", "iam:invitations:list"),
    "groups": ("organizations:group_list", "iam:groups:list"),
    "applications": ("organizations:application_list", "iam:applications:list"),
    "api_keys": ("organizations:api_key_list", "iam:api-keys:list"),
    "policies": ("policies:policy_list", "iam:policies:list"),
    "guardrails": ("policies:guardrails", "iam:policies:list"),
    "catalogue": ("iamtools:catalogue", "iam:policies:list"),
    "simulator": ("iamtools:simulator", "iam:simulator:use"),
    "who_can": ("iamtools:who_can", "iam:simulator:use"),
    "unused_access": ("iamtools:unused_access", "iam:simulator:use"),
}


class Navigation:
    """The links of base.html's sidebar and the IAM tabs, each reversed and permission
    checked once, on first use: `nav.groups` is the groups list's URL, or "" when the
    user may not list groups."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request
        self._urls: dict[str, str] = {}

    def __getattr__(self, key: str) -> str:
        if key.startswith("_") or key not in NAV_LINKS:
            raise AttributeError(key)
        if key not in self._urls:
            name, permission = NAV_LINKS[key]
            allowed = not permission or can(self._request, permission)
            organization_id = self._request.organization.pk  # type: ignore[attr-defined]
            self._urls[key] = link(name, organization_id) if allowed else ""
        return self._urls[key]

    @property
    def home(self) -> str:
        return link("organizations:home")

    @property
    def switch(self) -> str:
        return link("organizations:switch")

    @property
    def organizations(self) -> str:
        return link("organizations:list")


def navigation(request: HttpRequest) -> dict[str, Any]:
    """`nav` on an organization's pages (see `Navigation`)."""
    if getattr(request, "organization", None) is None:
        return {}
    return {"nav": Navigation(request)}


def csp_nonce(request: HttpRequest) -> dict[str, str]:
    """Expose the CSP nonce under the name django-htmx's `{% htmx_script %}` reads."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
