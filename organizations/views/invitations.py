"""Invitations: list, invite, resend, revoke, and accepting a link."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.sudo import sudo_required
from iamportal.forms import apply_errors, save_form
from iamportal.request import paginate
from iamportal.widgets import pick_searches
from organizations.forms.invitations import InvitationSignupForm, InviteForm
from organizations.models import Invitation
from organizations.selectors import invitations as invitation_selectors
from organizations.services import invitations as invitation_services
from policies.guards import public, requires

# Links just issued (invitations, password links): shown once on the next page, never
# stored beyond it.
_ISSUED_LINKS_SESSION_KEY = "issued_links"


def issue_links(request: HttpRequest, links: list[tuple[str, str]]) -> None:
    """Keep (email, link) pairs for the next page, which shows them once."""
    request.session[_ISSUED_LINKS_SESSION_KEY] = [list(pair) for pair in links]


def issued_links(request: HttpRequest) -> list[list[str]]:
    return request.session.pop(_ISSUED_LINKS_SESSION_KEY, [])


@requires("iam:invitations:list")
@never_cache  # it shows the links just issued, once: no copy may stay in a cache
@require_GET
def invitation_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    status = request.GET.get("status", "")
    return render(
        request,
        "organizations/iam/invitations/list.html",
        {
            "page": paginate(
                request, invitation_selectors.invitations_of(request.organization, status)
            ),
            "status": status,
            "statuses": Invitation.Status.choices,
            "issued": issued_links(request),
            "now": timezone.now(),
        },
    )


@requires("iam:users:invite")
@never_cache
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    form = InviteForm(request.POST or None, organization=organization)
    pick_searches(form, request.GET)  # the groups picker's search without scripts
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: invitation_services.invitations_create(
                organization=organization,
                actor=request.membership,
                emails=data["emails"],
                role=data["role"],
                groups=data["groups"],
                request=request,
            ),
        )
    ):
        issued = saved.value
        issue_links(request, [(item.invitation.email, item.link) for item in issued])
        count = len(issued)
        messages.success(request, f"{count} invitation{'s' if count != 1 else ''} sent by email.")
        if not form.cleaned_data["role"] and not form.cleaned_data["groups"]:
            messages.info(
                request,
                "With no role and no group, they join with no permission at all: add them "
                "to a group or attach a policy once they accept.",
            )
        return redirect("organizations:invitation_list", org_id=org_id)
    return render(
        request,
        "organizations/iam/invitations/invite.html",
        {"form": form, "domains": organization.invitation_domains},
        status=400 if form.is_bound else 200,
    )


def _invitation_action(
    request: HttpRequest, invitation_id: UUID, action: Callable[[Invitation], str]
) -> HttpResponse:
    invitation = invitation_selectors.invitation_for(
        organization=request.organization, invitation_id=invitation_id
    )
    try:
        message = action(invitation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, message)
    return redirect("organizations:invitation_list", org_id=request.organization.pk)


@requires("iam:invitations:resend")
@sudo_required  # the new link is shown to whoever resends it
@never_cache
@require_POST
def invitation_resend(request: HttpRequest, org_id: UUID, invitation_id: UUID) -> HttpResponse:
    def resend(invitation: Invitation) -> str:
        issued = invitation_services.invitation_resend(
            invitation=invitation, actor=request.membership, request=request
        )
        issue_links(request, [(invitation.email, issued.link)])
        return f"Invitation to {invitation.email} sent again; the previous link no longer works."

    return _invitation_action(request, invitation_id, resend)


@requires("iam:invitations:revoke")
@require_POST
def invitation_revoke(request: HttpRequest, org_id: UUID, invitation_id: UUID) -> HttpResponse:
    def revoke(invitation: Invitation) -> str:
        invitation_services.invitation_revoke(
            invitation=invitation, actor=request.membership, request=request
        )
        return f"Invitation to {invitation.email} revoked."

    return _invitation_action(request, invitation_id, revoke)


def _problem_page(
    request: HttpRequest, invitation: Invitation | None, problem: str
) -> HttpResponse:
    """Why the link cannot be used (`invitation_services.invitation_problem`), with a 4xx status."""
    status = 404 if problem == "unknown" else 410 if problem != "other_email" else 403
    return render(
        request,
        "organizations/invitation_accept.html",
        {"invitation": invitation, "problem": problem},
        status=status,
    )


@public
@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Join from the emailed link: a signed-in invitee accepts with one button; anyone else
    signs in first or creates an account for the invited address. A link that cannot be
    used says why, with a 4xx status."""
    invitation = invitation_selectors.invitation_by_token(token)
    user = request.user if request.user.is_authenticated else None
    problem = invitation_services.invitation_problem(invitation, user)
    if problem:
        return _problem_page(request, invitation, problem)
    signup_form = None
    if user is not None:
        if request.method == "POST":
            try:
                membership = invitation_services.invitation_accept(
                    invitation=invitation, user=user, request=request
                )
            except ValidationError as error:
                # Used or revoked since the check above (a double click, another tab).
                return _problem_page(request, invitation, error.messages[0])
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect("organizations:dashboard", org_id=membership.organization_id)
    else:
        signup_form = InvitationSignupForm(request.POST or None, email=invitation.email)
        if request.method == "POST" and signup_form.is_valid():
            try:
                with transaction.atomic():
                    if User.objects.filter(email=invitation.email).exists():
                        raise ValidationError(
                            "An account with this email already exists: sign in to accept."
                        )
                    new_user = User.objects.create_user(
                        email=invitation.email,
                        password=signup_form.cleaned_data["password"],
                        full_name=signup_form.cleaned_data["full_name"],
                    )
                    membership = invitation_services.invitation_accept(
                        invitation=invitation, user=new_user, request=request
                    )
            except ValidationError as error:
                apply_errors(signup_form, error)
            else:
                login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome to {membership.organization.name}.")
                return redirect("organizations:dashboard", org_id=membership.organization_id)
    return render(
        request,
        "organizations/invitation_accept.html",
        {"invitation": invitation, "signup_form": signup_form},
        status=400 if signup_form is not None and signup_form.is_bound else 200,
    )
