"""Request-level helpers every app shares: the client's address (behind trusted proxies), user
agent and request id, as lock-out, conditions and audit read them; search terms, pagination,
a safe `next` inside the organization."""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest

from accounts.sudo import safe_next
from iamportal.text import one_line

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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# A proxy's request id is kept only when it is a plain token; anything else is replaced.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


USER_AGENT_MAX_LENGTH = 512


def _ip(value: str) -> IPAddress | None:
    """The address in `value`, IPv4-mapped IPv6 as IPv4; None for anything else (ports,
    zone ids, names)."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return None
        return address.ipv4_mapped or address
    return address


def _trusted(address: IPAddress) -> bool:
    return any(address in network for network in settings.TRUSTED_PROXIES)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address, for lock-out, conditions and audit.

    `REMOTE_ADDR`, unless that peer is a trusted proxy (`TRUSTED_PROXIES`): then the
    right-most address of X-Forwarded-For that is not a trusted proxy. Anyone can write
    the header's left part, so it is read from the right and only through trusted hops;
    a malformed entry ends the walk at the last good address.
    """
    if request is None:
        return None
    peer = _ip(request.META.get("REMOTE_ADDR", ""))
    if peer is None or not _trusted(peer):
        return str(peer) if peer is not None else None
    client = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _ip(hop)
        if address is None:
            break
        client = address
        if not _trusted(address):
            break
    return str(client)


def request_id(request: HttpRequest | None) -> str:
    """The request's id: the proxy's X-Request-ID when it is a safe token (letters,
    digits, `._:-`, at most 64), else one made up once per request, so every event of
    one request carries the same id."""
    if request is None:
        return ""
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    if _SAFE_REQUEST_ID.fullmatch(given):
        return given
    return request.__dict__.setdefault("audit_request_id", uuid.uuid4().hex)


def client_user_agent(request: HttpRequest | None) -> str:
    """The request's User-Agent as stored (events, sessions, lock-out records): one line
    with no control characters (PostgreSQL refuses NUL in text), bounded."""
    if request is None:
        return ""
    agent = request.META.get("HTTP_USER_AGENT", "")[: USER_AGENT_MAX_LENGTH * 2]
    return one_line(agent)[:USER_AGENT_MAX_LENGTH]
