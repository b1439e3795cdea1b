"""Access declarations for views.

Every view names what it needs: `@public` (no sign-in), `@signed_in` (any signed-in
user, no organization), or `@requires("service:resource:verb")` for organization pages.
The system check `policies.E001` refuses any URL whose view declares none of these.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from organizations.selectors.organizations import membership_for
from organizations.selectors.projects import project_for
from policies import catalogue
from policies.authz import authorize, deny_response
from policies.delegation import DelegationRefused, record_refusals, refused_response

View = Callable[..., HttpResponse]


def public(view: View) -> View:
    """Anyone, signed in or not, may open this view."""
    view = login_not_required(view)
    view.iam_access = "public"  # type: ignore[attr-defined]
    return view


def signed_in(view: View) -> View:
    """Any signed-in user; the view touches no organization's data but the user's own."""
    view.iam_access = "signed_in"  # type: ignore[attr-defined]
    return view


def requires(action: str, *, project_kwarg: str | None = None) -> Callable[[View], View]:
    """Guard an organization view (URL kwarg `org_id`) with one catalogue action.

    Outsiders get 404 (the organization does not exist for them); members without the
    permission get the 403 page naming it. For project-level actions, `project_kwarg`
    names the URL kwarg holding the project id, resolved inside the organization.
    """
    if not catalogue.is_valid_action(action):
        raise ImproperlyConfigured(f"@requires names an unknown action {action!r}.")

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, org_id: Any, **kwargs: Any) -> HttpResponse:
            # The security middleware has usually read this membership already.
            membership = getattr(request, "security_membership", None)
            if membership is None or str(membership.organization_id) != str(org_id):
                membership = membership_for(user=request.user, organization_id=org_id)
            request.membership = membership  # type: ignore[attr-defined]
            request.organization = membership.organization  # type: ignore[attr-defined]
            request.iam_action = action  # type: ignore[attr-defined]
            project = None
            if project_kwarg is not None:
                project = project_for(
                    organization=membership.organization, project_id=kwargs[project_kwarg]
                )
                request.project = project  # type: ignore[attr-defined]
            decision = authorize(request, action, project_id=project.pk if project else None)
            if not decision.allowed:
                return deny_response(request, decision)
            try:
                response = view(request, org_id=org_id, **kwargs)
            except DelegationRefused as refused:
                response = refused_response(request, refused)
            # A refused grant is recorded now that the change it belonged to rolled back.
            record_refusals(request)
            return response

        guarded.iam_access = "action"  # type: ignore[attr-defined]
        guarded.iam_action = action  # type: ignore[attr-defined]
        guarded.iam_project_kwarg = project_kwarg  # type: ignore[attr-defined]
        return guarded

    return decorator
