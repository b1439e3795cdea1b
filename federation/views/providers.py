"""The organization's identity providers page (settings): providers, claim rules, and
single sign-on only. Reading needs the security settings' read permission, changing them
the update permission, being an owner (the services check it: PermissionDenied is a 403)
and a fresh confirmation (sudo)."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from federation import selectors, services
from federation.forms import ClaimRuleForm, ProviderForm, SSORequiredForm
from federation.models import IdentityProvider
from iamportal.forms import save_form
from policies.guards import requires


def _back(org_id: UUID) -> HttpResponse:
    return redirect("federation:providers", org_id=org_id)


@requires("organization:security:read")
@require_GET
def providers(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    required = selectors.sso_required(organization)
    return render(
        request,
        "federation/providers.html",
        {
            "providers": selectors.providers_of(organization),
            "sso_required": required,
            "sso_form": SSORequiredForm(initial={"sso_required": required}),
            "rule_form": ClaimRuleForm(organization=organization),
            "is_owner": request.membership.is_owner,
        },
    )


def _initial(provider: IdentityProvider) -> dict[str, object]:
    return {
        "name": provider.name,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "domains": ", ".join(domain.domain for domain in provider.domains.all()),
        "scopes": provider.scopes,
        "saml_metadata_url": provider.saml_metadata_url,
        "saml_email_attribute": provider.saml_email_attribute,
        "accept_provider_mfa": provider.accept_provider_mfa,
        "enabled": provider.enabled,
    }


@requires("organization:security:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def provider_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    services.require_owner(request.organization, request.user)
    form = ProviderForm(request.POST or None)
    if request.method == "POST" and save_form(
        form,
        lambda data: services.provider_create(
            organization=request.organization, actor=request.user, request=request, **data
        ),
    ):
        messages.success(request, "Identity provider added. Test it before your members use it.")
        return _back(org_id)
    return render(
        request,
        "federation/provider_form.html",
        {"form": form, "provider": None},
        status=400 if form.is_bound else 200,
    )


@requires("organization:security:update")
@sudo_required
@require_http_methods(["GET", "POST"])
def provider_update(request: HttpRequest, org_id: UUID, provider_id: UUID) -> HttpResponse:
    provider = selectors.provider_for(organization=request.organization, provider_id=provider_id)
    services.require_owner(request.organization, request.user)
    form = ProviderForm(request.POST or None, initial=_initial(provider), provider=provider)
    if request.method == "POST":
        saved = save_form(
            form,
            lambda data: services.provider_update(
                provider=provider, actor=request.user, request=request, **data
            ),
        )
        if saved:
            messages.success(
                request, "Identity provider saved." if saved.value else "Nothing changed."
            )
            return _back(org_id)
        provider.refresh_from_db()  # do not show rejected values as the stored ones
    return render(
        request,
        "federation/provider_form.html",
        {"form": form, "provider": provider},
        status=400 if form.is_bound else 200,
    )


@requires("organization:security:update")
@sudo_required
@require_POST
def provider_delete(request: HttpRequest, org_id: UUID, provider_id: UUID) -> HttpResponse:
    provider = selectors.provider_for(organization=request.organization, provider_id=provider_id)
    try:
        services.provider_delete(provider=provider, actor=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Identity provider {provider.name} removed.")
    return _back(org_id)


@requires("organization:security:update")
@require_POST
def provider_test(request: HttpRequest, org_id: UUID, provider_id: UUID) -> HttpResponse:
    provider = selectors.provider_for(organization=request.organization, provider_id=provider_id)
    ok, message = services.provider_test(provider=provider, actor=request.user, request=request)
    (messages.success if ok else messages.error)(request, f"{provider.name}: {message}")
    return _back(org_id)


@requires("organization:security:update")
@sudo_required
@require_POST
def domain_verify(
    request: HttpRequest, org_id: UUID, provider_id: UUID, domain_id: int
) -> HttpResponse:
    provider = selectors.provider_for(organization=request.organization, provider_id=provider_id)
    claim = selectors.domain_claim_for(provider=provider, domain_id=domain_id)
    ok, message = services.domain_verify(claim=claim, actor=request.user, request=request)
    (messages.success if ok else messages.error)(request, message)
    return _back(org_id)


@requires("organization:security:update")
@sudo_required
@require_POST
def claim_rule_add(request: HttpRequest, org_id: UUID, provider_id: UUID) -> HttpResponse:
    organization = request.organization
    provider = selectors.provider_for(organization=organization, provider_id=provider_id)
    form = ClaimRuleForm(request.POST, organization=organization)
    if save_form(
        form,
        lambda data: services.claim_rule_add(
            provider=provider, actor=request.user, request=request, **data
        ),
    ):
        messages.success(request, "Claim rule added; it applies at each member's next sign-in.")
    else:
        for error in form.errors.values():
            messages.error(request, " ".join(error))
    return _back(org_id)


@requires("organization:security:update")
@sudo_required
@require_POST
def claim_rule_remove(
    request: HttpRequest, org_id: UUID, provider_id: UUID, rule_id: UUID
) -> HttpResponse:
    provider = selectors.provider_for(organization=request.organization, provider_id=provider_id)
    rule = selectors.claim_rule_for(provider=provider, rule_id=rule_id)
    services.claim_rule_remove(rule=rule, actor=request.user, request=request)
    messages.success(request, "Claim rule removed; groups it gave stay until the next sign-in.")
    return _back(org_id)


@requires("organization:security:update")
@sudo_required
@require_POST
def sso_required_update(request: HttpRequest, org_id: UUID) -> HttpResponse:
    form = SSORequiredForm(request.POST)
    saved = save_form(
        form,
        lambda data: services.sso_required_set(
            organization=request.organization,
            actor=request.user,
            required=data["sso_required"],
            request=request,
        ),
    )
    if saved:
        messages.success(
            request, "Single sign-on setting saved." if saved.value else "Nothing changed."
        )
    else:
        messages.error(request, " ".join(form.non_field_errors()))
    return _back(org_id)
