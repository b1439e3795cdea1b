from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def security(request: HttpRequest) -> dict[str, Any]:
    """The MFA banner of an organization page during a member's grace period."""
    notice = getattr(request, "mfa_notice", None)
    return {"mfa_notice": notice} if notice else {}
