"""SAML 2.0 endpoints of the console as service provider, per identity provider: its SP
metadata, and the assertion consumer service the IdP POSTs its answer to."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from federation import saml
from federation.models import IdentityProvider
from federation.views.sso import PENDING_MAX_AGE, SAML_COOKIE, SAML_SALT, arrive, refused
from policies.guards import public


def _saml_provider(provider_id: UUID) -> IdentityProvider:
    return get_object_or_404(
        IdentityProvider.objects.select_related("organization"),
        pk=provider_id,
        kind=IdentityProvider.Kind.SAML,
        enabled=True,
    )


@public
@require_GET
def saml_metadata(request: HttpRequest, provider_id: UUID) -> HttpResponse:
    """The SP metadata to give the IdP (public: it holds only the certificate)."""
    provider = _saml_provider(provider_id)
    xml = saml.sp_metadata(provider, saml.service_provider(request, provider))
    return HttpResponse(xml, content_type="application/samlmetadata+xml")


def _pending(request: HttpRequest) -> dict[str, Any] | None:
    try:
        value = request.get_signed_cookie(SAML_COOKIE, salt=SAML_SALT, max_age=PENDING_MAX_AGE)
        pending = json.loads(value)
    except (KeyError, signing.BadSignature, ValueError):
        return None
    return pending if isinstance(pending, dict) else None


# The IdP's page POSTs here from its own site, without our CSRF token: the signed
# assertion, its audience and destination, and InResponseTo against the signed cookie
# set when this browser started the sign-in stand in for the CSRF check.
@csrf_exempt
@public
@never_cache
@require_POST
def saml_acs(request: HttpRequest, provider_id: UUID) -> HttpResponse:
    provider = _saml_provider(provider_id)
    pending = _pending(request)
    if pending is None or pending.get("p") != str(provider.pk):
        response = refused(
            request,
            provider,
            "no_pending_sign_in",
            "This single sign-on did not start here, or took too long. Start again.",
            status=400,
        )
    else:
        try:
            claims = saml.validate_response(
                provider,
                saml.service_provider(request, provider),
                request.POST.get("SAMLResponse", ""),
                str(pending.get("r")),
            )
        except saml.ResponseRefused as error:
            response = refused(request, provider, error.reason, str(error))
        else:
            response = arrive(request, provider, claims, str(pending.get("next") or ""))
    # One answer per request: the cookie goes whatever the outcome.
    response.delete_cookie(SAML_COOKIE, path=request.path, samesite="None")
    return response
