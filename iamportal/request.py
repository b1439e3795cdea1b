"""Request-level helpers every app's views share: search terms, pagination, a safe `next`
inside the organization."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest

from accounts.sudo import safe_next

PAGE_SIZE = 25


def paginate(request: HttpRequest, queryset: Any, per_page: int = PAGE_SIZE) -> Any:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def search_term(request: HttpRequest, name: str = "q") -> str:
    """A search box's text: trimmed, bounded, and without NUL characters, which
    PostgreSQL refuses in any text value (a 500 otherwise)."""
    return request.GET.get(name, "").replace("\x00", "").strip()[:100]


def next_in_organization(request: HttpRequest, target: str | None, fallback: str) -> str:
    """`target` when it is a page of the request's organization on this site (a form's
    `next`), else `fallback`."""
    prefix = f"/o/{request.organization.pk}/"  # type: ignore[attr-defined]
    return safe_next(request, target, fallback) if (target or "").startswith(prefix) else fallback
