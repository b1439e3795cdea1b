"""Security settings and members' MFA resets and deadlines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import mfa
from accounts.sudo import sudo_required
from iamportal.forms import apply_errors
from organizations.forms.security import SecuritySettingsForm
from organizations.models import Membership
from organizations.selectors.people import user_for
from organizations.services import security as security_services
from policies.guards import requires


@requires("organization:security:read")
@require_GET
def security_settings(request: HttpRequest, org_id: UUID) -> HttpResponse:
    return render(request, "organizations/settings/security.html", {})


@requires("organization:security:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def security_settings_update(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    form = SecuritySettingsForm(request.POST or None, instance=organization)
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in security_services.SECURITY_FIELDS}
        try:
            changed = security_services.organization_update_security(
                organization=organization, actor=request.user, request=request, **values
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if not changed:
                messages.info(request, "Nothing changed.")
            else:
                messages.success(request, "Security settings saved.")
                if (
                    "mfa_required" in changed
                    and organization.mfa_required
                    and not mfa.is_verified(request)
                ):
                    messages.warning(
                        request,
                        "MFA is now required, and you have not signed in with it: "
                        "set up an authenticator app before your grace period ends.",
                    )
            return redirect("organizations:security_settings", org_id=org_id)
    if form.is_bound:
        # Do not show rejected values as the stored ones.
        organization.refresh_from_db()
    return render(
        request,
        "organizations/settings/security_form.html",
        {"form": form},
        status=400 if form.is_bound else 200,
    )


def _back_to_user(request: HttpRequest, membership: Membership) -> HttpResponse:
    return redirect(
        "organizations:user_detail", org_id=membership.organization_id, membership_id=membership.pk
    )


def _mfa_action(
    request: HttpRequest, membership_id: UUID, write: Callable[..., datetime], done: str
) -> HttpResponse:
    """Run an MFA write on a member (reset, or a new deadline) and go back to their page:
    `done` is formatted with the member's email and the deadline the write returns."""
    membership = user_for(organization=request.organization, membership_id=membership_id)
    try:
        deadline = write(membership=membership, actor=request.user, request=request)
    except PermissionDenied as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done.format(email=membership.user.email, deadline=deadline))
    return _back_to_user(request, membership)


@requires("iam:users:reset-mfa")
@sudo_required
@require_POST
def member_mfa_reset(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    return _mfa_action(
        request,
        membership_id,
        security_services.member_mfa_reset,
        "MFA of {email} reset: their sessions ended, and they have until "
        "{deadline:%Y-%m-%d %H:%M} UTC to set up a new authenticator.",
    )


@requires("iam:users:reset-mfa")
@sudo_required
@require_POST
def member_mfa_unlock(request: HttpRequest, org_id: UUID, membership_id: UUID) -> HttpResponse:
    return _mfa_action(
        request,
        membership_id,
        security_services.member_mfa_unlock,
        "{email} is unlocked and has until {deadline:%Y-%m-%d %H:%M} UTC to set up MFA.",
    )
