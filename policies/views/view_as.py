"""View as: open the console as another user or application of the organization, read-only.

Starting is the simulator's right (`iam:simulator:use`: its holders may already ask any
principal's decisions); every decision while viewing is the target's and the viewer's
own (policies.authz), so it never shows more than the viewer may read. Both ends are
audited. Stopping only touches the viewer's own session: it is open to any member, so
that it works even while the decisions in force are the target's.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.sudo import sudo_required
from audit import events
from audit.services import record
from organizations.models import Application, Membership
from organizations.selectors.applications import application_for
from organizations.selectors.organizations import member_for, membership_for
from policies.authz import (
    principal_of,
    set_view_as,
    view_as_entry,
    view_as_label,
    view_as_target,
)
from policies.guards import requires, signed_in


def _page_of(organization_id: object, kind: str, target_id: object) -> str:
    """The target's page in the console: where viewing starts from and returns to."""
    if kind == "user":
        return reverse("organizations:user_detail", args=[organization_id, target_id])
    return reverse("organizations:application_detail", args=[organization_id, target_id])


@requires("iam:simulator:use")
@sudo_required
@require_POST
def start(
    request: HttpRequest,
    org_id: UUID,
    membership_id: UUID | None = None,
    application_id: UUID | None = None,
) -> HttpResponse:
    """Start viewing the organization as a user (`membership_id`) or an application; another
    organization's principal is a 404. Yourself and suspended principals are refused."""
    organization = request.organization  # type: ignore[attr-defined]
    target: Membership | Application
    if membership_id is not None:
        target, kind = member_for(organization=organization, membership_id=membership_id), "user"
    else:
        target = application_for(organization=organization, application_id=application_id)
        kind = "application"
    label = view_as_label(target)
    page = _page_of(organization.pk, kind, target.pk)
    if kind == "user" and target.pk == request.membership.pk:  # type: ignore[attr-defined]
        messages.error(request, "You already see the console as yourself.")
        return redirect(page)
    if not principal_of(target).is_active:
        messages.error(request, f"{label} is suspended: there is no console to view as them.")
        return redirect(page)
    with transaction.atomic():
        record(
            action=events.VIEW_AS_STARTED,
            organization=organization,
            actor=request.user,
            target=target,
            target_label=label,
            data={"kind": kind, "viewer": request.user.email, "target": label},
            request=request,
        )
    entry = {"kind": kind, "id": str(target.pk), "label": label}
    set_view_as(request, organization.pk, entry)
    return redirect("organizations:dashboard", org_id=organization.pk)


def _allowed_while_viewing(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    view.allowed_while_viewing_as = True  # type: ignore[attr-defined]
    return view


@signed_in
@_allowed_while_viewing
@require_POST
def stop(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Stop viewing the organization as someone and return to their page."""
    organization = membership_for(user=request.user, organization_id=org_id).organization
    entry = view_as_entry(request, organization.pk)
    if not entry:
        return redirect("organizations:dashboard", org_id=organization.pk)
    set_view_as(request, organization.pk, None)
    target = view_as_target(organization, entry)
    label = view_as_label(target) if target is not None else entry.get("label", "")
    with transaction.atomic():
        record(
            action=events.VIEW_AS_STOPPED,
            organization=organization,
            actor=request.user,
            target=target,
            target_label=label,
            data={"kind": entry.get("kind", ""), "viewer": request.user.email, "target": label},
            request=request,
        )
    messages.info(request, f"You stopped viewing as {label}.")
    if target is None:
        return redirect("organizations:dashboard", org_id=organization.pk)
    return redirect(_page_of(organization.pk, entry["kind"], target.pk))
