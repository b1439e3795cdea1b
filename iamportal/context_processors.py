from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.urls import get_script_prefix, reverse

from policies.authz import can

# The organization's links are reversed once per process with this id in place of the
# organization's, then filled in: `{% url %}` cost ~50 µs a link, ~20 links a page.
_ORG_SLOT = str(UUID(int=0))

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


@lru_cache(maxsize=256)
def _reversed(name: str, script_prefix: str, with_slot: bool) -> str:
    # Keyed on the script prefix too: `reverse` prepends it.
    return reverse(name, args=[_ORG_SLOT]) if with_slot else reverse(name)


def link(name: str, organization_id: object = None) -> str:
    """`reverse(name, args=[organization_id])` (or without arguments), from a cache."""
    url = _reversed(name, get_script_prefix(), organization_id is not None)
    return url.replace(_ORG_SLOT, str(organization_id)) if organization_id is not None else url


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
