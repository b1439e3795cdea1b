"""Fresh confirmation ("sudo mode") for sensitive actions.

Signing in, or confirming the password or an authenticator code at
`/accounts/confirm/`, puts a signed, timestamped token in the session; it is good for
`SUDO_MAX_AGE` seconds (10 minutes) and only for the user it was issued to. Views that
change ownership, policies, security settings, someone's MFA or create API keys are
decorated below their guard::

    @requires("iam:policies:update")
    @sudo_required
    @require_POST
    def rule_add(request, org_id, policy_id): ...

The guard runs first (outsiders get 404, the under-privileged 403, never a prompt).
Without a fresh confirmation a plain request is redirected to the confirmation page
and an HTMX request gets `HX-Redirect`; afterwards the user lands back on the page
(for a POST, the page the form was on) and submits again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

SESSION_KEY = "_sudo"
_SALT = "accounts.sudo"

View = Callable[..., HttpResponse]


def sudo_grant(request: HttpRequest, user: Any = None) -> None:
    """Mark the session as freshly confirmed by `user` (default: the signed-in user)."""
    user = user if user is not None else request.user
    request.session[SESSION_KEY] = signing.dumps({"u": str(user.pk)}, salt=_SALT)


def sudo_is_fresh(request: HttpRequest) -> bool:
    token = request.session.get(SESSION_KEY)
    if not token or not request.user.is_authenticated:
        return False
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.SUDO_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return False
    return data.get("u") == str(request.user.pk)


def safe_next(request: HttpRequest, candidate: str | None, fallback: str = "/") -> str:
    """`candidate` when it is a path on this site, else `fallback`."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


def _path_of(request: HttpRequest, url: str) -> str:
    """The path and query of `url` (a full URL), when they are safe to return to."""
    parts = urlsplit(url)
    return safe_next(request, parts.path + (f"?{parts.query}" if parts.query else ""))


def _return_to(request: HttpRequest) -> str:
    if request.htmx and request.htmx.current_url:
        return _path_of(request, request.htmx.current_url)
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    # A POST cannot be replayed after the detour: go back to the page of the form.
    referer = request.META.get("HTTP_REFERER", "")
    if referer and urlsplit(referer).netloc in ("", request.get_host()):
        return _path_of(request, referer)
    return "/"


def confirm_url(next_url: str) -> str:
    return f"{reverse('accounts:confirm')}?{urlencode({'next': next_url})}"


def sudo_required(view: View) -> View:
    """Ask for a fresh confirmation before running `view` (see the module docstring)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if sudo_is_fresh(request):
            return view(request, *args, **kwargs)
        url = confirm_url(_return_to(request))
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)

    wrapper.sudo_required = True  # type: ignore[attr-defined]
    return wrapper
