from __future__ import annotations

from django.http import HttpRequest


def csp_nonce(request: HttpRequest) -> dict[str, str]:
    """Expose the CSP nonce under the name django-htmx's `{% htmx_script %}` reads."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
