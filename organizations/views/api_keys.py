"""API keys: list, create (the secret shown once), enable a disabled one again, delete."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from iamportal.forms import save_form
from iamportal.request import next_in_organization, paginate
from iamportal.widgets import pick_searches
from organizations.forms.api_keys import APIKeyForm
from organizations.models import APIKey
from organizations.selectors import api_keys as api_key_selectors
from organizations.selectors import applications as application_selectors
from organizations.selectors.organizations import membership_for
from organizations.selectors.projects import projects_of
from organizations.services import api_keys as api_key_services
from policies.authz import authorize_on_key, deny_response
from policies.guards import requires

View = Callable[..., HttpResponse]


TEMPLATES = "organizations/iam/api_keys"


def _secret_session_key(api_key_id: object) -> str:
    return f"api_key_secret:{api_key_id}"


def bearer_or_requires(action: str) -> Callable[[View], View]:
    """Guard a view of one API key (URL kwarg `api_key_id`): its bearer, or `action`.

    Outsiders get 404, as do keys of other organizations. The bearer passes when the
    only reason to refuse would be that no policy grants `action` (implicit deny).
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, org_id: Any, api_key_id: Any, **kwargs: Any) -> Any:
            membership = membership_for(user=request.user, organization_id=org_id)
            request.membership = membership  # type: ignore[attr-defined]
            request.organization = membership.organization  # type: ignore[attr-defined]
            api_key = api_key_selectors.api_key_for(
                organization=membership.organization, api_key_id=api_key_id
            )
            if (denied := authorize_on_key(request, api_key, action)) is not None:
                return deny_response(request, denied)
            request.api_key = api_key  # type: ignore[attr-defined]
            return view(request, org_id=org_id, api_key_id=api_key_id, **kwargs)

        guarded.iam_access = "action"  # type: ignore[attr-defined]
        guarded.iam_action = action  # type: ignore[attr-defined]
        guarded.iam_bearer_allowed = True  # type: ignore[attr-defined]
        return guarded

    return decorator


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    return next_in_organization(request, target, default)


@requires("iam:api-keys:list")
@require_GET
def api_key_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Every key of the organization, or with `?mine=1` the signed-in user's own."""
    mine = request.GET.get("mine") == "1"
    keys = api_key_selectors.api_keys_of(
        organization=request.organization,
        membership=request.membership if mine else None,
    )
    page = paginate(request, keys)
    return render(request, f"{TEMPLATES}/api_key_list.html", {"page": page, "mine": mine})


@requires("iam:api-keys:create")
@sudo_required
@require_http_methods(["GET", "POST"])
def api_key_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Create a key for yourself or an application; the secret shows on the next page."""
    organization = request.organization
    expiry_limit = api_key_services.api_key_expiry_limit(organization, timezone.now().date())
    initial = {}
    if request.method == "GET" and request.GET.get("application"):
        initial["bearer"] = request.GET["application"]
    form = APIKeyForm(
        request.POST or None,
        initial=initial,
        membership=request.membership,
        applications=application_selectors.application_choices(organization),
        projects=projects_of(organization),
        expiry_limit=expiry_limit,
    )
    pick_searches(form, request.GET)  # the pickers' search without scripts
    if request.method == "POST" and (
        saved := save_form(
            form,
            lambda data: api_key_services.api_key_create(
                organization=organization,
                creator=request.membership,
                bearer=data["bearer"],
                description=data["description"],
                expires_on=data["expires_on"],
                default_project=data["default_project"],
                request=request,
            ),
        )
    ):
        created = saved.value
        request.session[_secret_session_key(created.api_key.pk)] = created.secret
        return redirect(
            "organizations:api_key_created", org_id=org_id, api_key_id=created.api_key.pk
        )
    return render(
        request,
        f"{TEMPLATES}/api_key_form.html",
        {"form": form, "expiry_limit": expiry_limit},
        status=400 if form.is_bound else 200,
    )


@requires("iam:api-keys:create")
@require_GET
@never_cache
def api_key_created(request: HttpRequest, org_id: UUID, api_key_id: UUID) -> HttpResponse:
    """The new key with its secret, exactly once: the secret leaves the session here."""
    api_key = api_key_selectors.api_key_for(
        organization=request.organization, api_key_id=api_key_id
    )
    secret = request.session.pop(_secret_session_key(api_key.pk), None)
    return render(
        request, f"{TEMPLATES}/api_key_created.html", {"api_key": api_key, "secret": secret}
    )


@bearer_or_requires("iam:api-keys:delete")
@require_http_methods(["GET", "POST"])
def api_key_delete(request: HttpRequest, org_id: UUID, api_key_id: UUID) -> HttpResponse:
    """Confirm, then revoke: the key stops working at once."""
    api_key: APIKey = request.api_key  # type: ignore[attr-defined]
    back = _safe_next(request, reverse("organizations:api_key_list", args=[org_id]))
    if request.method == "POST":
        api_key_services.api_key_delete(api_key=api_key, actor=request.user, request=request)
        messages.success(request, f"API key {api_key.access_key} revoked.")
        return redirect(back)
    return render(
        request, f"{TEMPLATES}/api_key_delete.html", {"api_key": api_key, "back_url": back}
    )


@requires("iam:api-keys:delete")
@sudo_required
@require_POST
def api_key_enable(request: HttpRequest, org_id: UUID, api_key_id: UUID) -> HttpResponse:
    """Let a disabled key (`manage.py disable_unused`) work again, then back to `next`.

    Guarded like revoking other principals' keys; the key then holds its bearer's
    permissions, so the service keeps them within the author's (the delegation ceiling).
    """
    api_key = api_key_selectors.api_key_for(
        organization=request.organization, api_key_id=api_key_id
    )
    back = _safe_next(request, reverse("organizations:api_key_list", args=[org_id]))
    try:
        enabled = api_key_services.api_key_enable(
            api_key=api_key, actor=request.user, request=request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if enabled:
            messages.success(request, f"API key {api_key.access_key} enabled again.")
        else:
            messages.info(request, f"API key {api_key.access_key} was not disabled.")
    return redirect(back)
