"""Pages that stop a change in its tracks: the self-lockout question (`lockout`) and the
delegation refusal (`delegation`). Both replace the page's main area for HTMX, which
swaps only 2xx answers, and come with a way back to where the author was."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django_htmx.http import push_url, reswap, retarget

from accounts.sudo import safe_next


def back_url(request: HttpRequest) -> str:
    """The page the author came from on this site, else the organization's dashboard."""
    organization = request.organization  # type: ignore[attr-defined]
    return safe_next(
        request,
        request.headers.get("Referer"),
        fallback=reverse("organizations:dashboard", args=[organization.pk]),
    )


def interruption(
    request: HttpRequest, template: str, partial: str, context: dict[str, Any], *, status: int
) -> HttpResponse:
    """`template` with `status`; for HTMX, its `partial` in place of the main area (200)."""
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, f"{template}#{partial}", context)
        return push_url(reswap(retarget(response, "#main"), "innerHTML"), False)
    return render(request, template, context, status=status)
