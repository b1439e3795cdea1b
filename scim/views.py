"""The SCIM settings page: the endpoint's base URL and the organization's tokens; owners
create one (its value shown once) or revoke one."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.sudo import sudo_required
from iamportal.forms import apply_errors
from policies.guards import requires
from scim.forms import ScimTokenForm
from scim.models import ScimToken
from scim.tokens import scim_token_create, scim_token_revoke


def _page(
    request: HttpRequest, form: ScimTokenForm, *, created: str = "", status: int = 200
) -> HttpResponse:
    organization = request.organization
    base = reverse("scim:service_provider_config", kwargs={"org_id": organization.pk})
    return render(
        request,
        "scim/settings.html",
        {
            "form": form,
            # At most scim.tokens.MAX_TOKENS rows.
            "tokens": organization.scim_tokens.select_related("created_by"),
            "base_url": request.build_absolute_uri(base.removesuffix("ServiceProviderConfig")),
            "created": created,
            "is_owner": request.membership.is_owner,
        },
        status=status,
    )


@requires("organization:security:read")
@require_GET
def scim_settings(request: HttpRequest, org_id: UUID) -> HttpResponse:
    return _page(request, ScimTokenForm())


@requires("organization:security:update")
@sudo_required
@require_POST
@never_cache
def scim_token_add(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Create a token and show its value on this response only (never stored)."""
    form = ScimTokenForm(request.POST)
    if form.is_valid():
        try:
            created = scim_token_create(
                organization=request.organization,
                actor=request.user,
                name=form.cleaned_data["name"],
                request=request,
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return _page(request, ScimTokenForm(), created=created.value)
    return _page(request, form, status=400)


@requires("organization:security:update")
@sudo_required
@require_POST
def scim_token_delete(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Revoke the token named by the form's `token` (another organization's: 404)."""
    try:
        token_id = UUID(request.POST.get("token", ""))
    except ValueError:
        raise Http404("No such SCIM token.") from None
    token = get_object_or_404(ScimToken, pk=token_id, organization=request.organization)
    scim_token_revoke(token=token, actor=request.user, request=request)
    messages.success(request, f"SCIM token {token.name} is revoked: the provider's requests fail.")
    return redirect("scim:settings", org_id=org_id)
