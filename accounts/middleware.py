"""Session tracking, and each organization's session length and MFA requirement."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from accounts import mfa
from accounts.sessions import session_started_at, session_track
from organizations.models import Membership
from organizations.selectors.organizations import membership_for
from organizations.services.security import MFAStatus, mfa_status


class SessionActivityMiddleware:
    """Keeps the account page's list of sessions current (one write a minute at most)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # After the view: a sign-in in this request has its final session key by now.
        session_track(request)
        return response


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _with_next(name: str, request: HttpRequest) -> str:
    return f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"


def member_mfa_status(request: HttpRequest, membership: Membership) -> MFAStatus:
    """The MFA requirement of the membership's organization for this request's session."""
    verified = mfa.is_verified(request)
    return mfa_status(
        membership=membership,
        verified=verified,
        # Only an unverified session needs to know (one query) whether to ask for a code.
        enrolled=not verified and mfa.has_mfa(request.user),
    )


class OrganizationSecurityMiddleware:
    """For pages of an organization (`/o/<org_id>/…`), apply its security settings.

    - A session older than the organization's maximum session length is signed out.
    - MFA, when required (see organizations.security_services): a banner before the
      member's deadline, the lock page after it, a code for enrolled members whose
      session has not used one.

    Outsiders pass untouched: the view's guard answers them with 404.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        org_id = view_kwargs.get("org_id")
        if org_id is None or not request.user.is_authenticated:
            return None
        try:
            membership = membership_for(user=request.user, organization_id=org_id)
        except Http404:
            return None
        # The same row the view guard needs (policies.guards): it reuses it, one query for both.
        request.security_membership = membership  # type: ignore[attr-defined]
        organization = membership.organization

        started = session_started_at(request)
        max_age = organization.session_max_age_hours * 3600
        if started is not None and time.time() - started > max_age:
            next_url = request.get_full_path()
            logout(request)
            hours = organization.session_max_age_hours
            messages.info(
                request,
                f"{organization.name} limits sessions to {hours} hour{'s' if hours != 1 else ''}. "
                "Sign in again to continue.",
            )
            return _redirect(
                request, f"{reverse('accounts:login')}?{urlencode({'next': next_url})}"
            )

        if not organization.mfa_required:
            return None
        status = member_mfa_status(request, membership)
        if status.state == "grace":
            request.mfa_notice = {"organization": organization, "deadline": status.deadline}
        elif status.state == "verify":
            return _redirect(request, _with_next("accounts:mfa_verify", request))
        elif status.state == "locked":
            query = urlencode({"org": str(organization.pk), "next": request.get_full_path()})
            return _redirect(request, f"{reverse('accounts:mfa_required')}?{query}")
        return None
