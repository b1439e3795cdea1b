"""Signing in through an organization's identity provider: start (either protocol), the
OpenID Connect callback, what follows any verified identity (`arrive`, which the SAML
ACS shares), and the proof an existing account gives before it is linked."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts import mfa
from accounts.forms import ConfirmForm
from accounts.models import User
from accounts.sudo import safe_next
from accounts.views.mfa import mfa_pending_begin
from federation import crypto, oidc, saml, signin
from federation.forms import SSOStartForm
from federation.models import IdentityProvider
from policies.guards import public

PENDING_KEY = "_sso_pending"
LINK_KEY = "_sso_link"
_LINK_SALT = "federation.sso.link"
# The provider round trip, and the proof before linking, must finish within this.
PENDING_MAX_AGE = 600
BACKEND = "django.contrib.auth.backends.ModelBackend"
SAML_COOKIE = "iamportal_saml"
SAML_SALT = "federation.saml.pending"


def _callback_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("federation:sso_callback"))


def refused(
    request: HttpRequest,
    provider: IdentityProvider | None,
    reason: str,
    message: str,
    *,
    email: str = "",
    status: int = 403,
) -> HttpResponse:
    """The refusal page; audited in the provider's organization's trail."""
    signin.refuse(provider=provider, reason=reason, message=message, email=email, request=request)
    return render(
        request,
        "federation/refused.html",
        {"provider": provider, "message": message, "reason": reason},
        status=status,
    )


@public
@never_cache
@require_http_methods(["GET", "POST"])
def sso_start(request: HttpRequest) -> HttpResponse:
    """The email's domain names the provider; send the browser there."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), "")
    form = SSOStartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        provider = signin.provider_for_email(email)
        if provider is None:
            domain = email.rpartition("@")[2]
            form.add_error("email", f"No single sign-on is set up for addresses at {domain}.")
        else:
            if provider.kind == IdentityProvider.Kind.SAML:
                return _saml_start(request, provider, next_url)
            try:
                discovery = oidc.discover(provider.issuer)
            except oidc.ProviderUnavailable as error:
                return refused(
                    request,
                    provider,
                    "provider_unavailable",
                    f"{provider.name} cannot be reached right now ({error}) "
                    "Try again in a few minutes.",
                    email=email,
                    status=503,
                )
            auth = oidc.authorization_request(
                discovery,
                client_id=provider.client_id,
                scope=provider.scopes,
                redirect_uri=_callback_url(request),
                login_hint=email,
            )
            request.session[PENDING_KEY] = {
                "p": str(provider.pk),
                "s": auth.state,
                "n": auth.nonce,
                "v": auth.code_verifier,
                "next": next_url,
                "t": time.time(),
            }
            # Not a redirect: the login page's CSP (form-action 'self') would stop a form's
            # redirect to another origin. A page that moves on by itself (Refresh) is a
            # navigation, with a link for browsers that do not follow it.
            response = render(
                request, "federation/continue.html", {"provider": provider, "url": auth.url}
            )
            response["Refresh"] = f"0;url={auth.url}"
            return response
    return render(
        request,
        "federation/sso_start.html",
        {"form": form, "next": next_url},
        status=400 if form.is_bound else 200,
    )


def _saml_start(request: HttpRequest, provider: IdentityProvider, next_url: str) -> HttpResponse:
    """Send the browser to the SAML IdP with a signed request, whose id the answer must
    name. The id rides in a signed cookie of its own, not the session: the IdP POSTs its
    answer from another site, and the session cookie (SameSite=Lax) stays behind then."""
    request_id, url = saml.authn_request(provider, saml.service_provider(request, provider))
    response = render(request, "federation/continue.html", {"provider": provider, "url": url})
    response["Refresh"] = f"0;url={url}"  # as for OpenID Connect: CSP form-action 'self'
    response.set_signed_cookie(
        SAML_COOKIE,
        json.dumps({"p": str(provider.pk), "r": request_id, "next": next_url}),
        salt=SAML_SALT,
        max_age=PENDING_MAX_AGE,
        path=reverse("federation:saml_acs", args=[provider.pk]),
        secure=True,  # SameSite=None needs it; browsers allow it on http://localhost
        httponly=True,
        samesite="None",
    )
    return response


def _provider_of(pending: dict[str, Any]) -> IdentityProvider | None:
    return (
        IdentityProvider.objects.select_related("organization")
        .filter(pk=pending.get("p"), enabled=True)
        .first()
    )


def _claims(
    request: HttpRequest, provider: IdentityProvider, pending: dict[str, Any]
) -> dict[str, Any]:
    """The callback's validated ID token claims (raises oidc errors)."""
    discovery = oidc.discover(provider.issuer)
    tokens = oidc.exchange_code(
        discovery,
        client_id=provider.client_id,
        client_secret=crypto.decrypt(provider.client_secret_encrypted),
        scope=provider.scopes,
        redirect_uri=_callback_url(request),
        code=request.GET.get("code", ""),
        code_verifier=pending["v"],
    )
    jwks = oidc.fetch_json(discovery.jwks_uri)
    claims = oidc.validate_id_token(
        tokens.id_token,
        jwks=jwks,
        issuer=provider.issuer,
        client_id=provider.client_id,
        nonce=pending["n"],
    )
    return oidc.with_userinfo(claims, discovery, access_token=tokens.access_token)


@public
@never_cache
@require_GET
def sso_callback(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser back here with a code (or an error)."""
    pending = request.session.pop(PENDING_KEY, None)
    if not isinstance(pending, dict) or time.time() - float(pending.get("t", 0)) > PENDING_MAX_AGE:
        return refused(
            request,
            None,
            "no_pending_sign_in",
            "This single sign-on did not start here, or took too long. Start again.",
            status=400,
        )
    provider = _provider_of(pending)
    if provider is None:
        return refused(
            request, None, "provider_gone", "This identity provider is no longer enabled."
        )
    if request.GET.get("state") != pending["s"]:
        return refused(
            request,
            provider,
            "state_mismatch",
            "The answer from the identity provider does not belong to this sign-in. Start again.",
            status=400,
        )
    if "error" in request.GET or not request.GET.get("code"):
        error = request.GET.get("error", "no code")[:100]
        return refused(
            request, provider, "provider_error", f"{provider.name} did not sign you in ({error})."
        )
    try:
        claims = _claims(request, provider, pending)
    except oidc.ProviderUnavailable as error:
        return refused(
            request,
            provider,
            "provider_unavailable",
            f"{provider.name} cannot be reached right now ({error}) Try again in a few minutes.",
            status=503,
        )
    except oidc.TokenRefused as error:
        return refused(request, provider, error.reason, str(error))
    return arrive(request, provider, claims, pending.get("next") or "")


def arrive(
    request: HttpRequest, provider: IdentityProvider, claims: dict[str, Any], next_url: str
) -> HttpResponse:
    """A verified identity arrived from a provider, by either protocol: sign the member
    in (just in time if new), or have an existing account prove itself before linking."""
    try:
        outcome = signin.federated_identity(provider, claims, request)
    except signin.SignInRefused as error:
        return refused(request, provider, error.reason, str(error), email=error.email)
    if outcome.membership is None:
        request.session.cycle_key()
        request.session[LINK_KEY] = signing.dumps(
            {
                "u": str(outcome.user.pk),
                "p": str(provider.pk),
                "c": claims,
                "next": next_url,
                "t": time.time(),
            },
            salt=_LINK_SALT,
        )
        return redirect("federation:sso_link")
    return _complete(request, provider, outcome.user, outcome.membership, claims, next_url)


def _complete(
    request: HttpRequest,
    provider: IdentityProvider,
    user: User,
    membership: Any,
    claims: dict[str, Any],
    next_url: str,
) -> HttpResponse:
    """Apply the claim rules, then sign in: at once, or after the console's code."""
    signed = signin.federated_sign_in(
        provider=provider, user=user, membership=membership, claims=claims, request=request
    )
    next_url = safe_next(request, next_url, reverse(settings.LOGIN_REDIRECT_URL))
    if signed.changes:
        changes = "; ".join(signed.changes)
        messages.info(request, f"{provider.name} updated your groups: {changes}.")
    user.backend = BACKEND
    if signed.mfa_device is not None:
        user.otp_device = signed.mfa_device  # django-otp keeps it in the session at login
    elif mfa.has_mfa(user):
        mfa_pending_begin(request, user=user, next_url=next_url)
        return redirect("accounts:mfa_verify")
    login(request, user, backend=BACKEND)
    return redirect(next_url)


def _link_state(request: HttpRequest) -> dict[str, Any] | None:
    try:
        state = signing.loads(
            request.session.get(LINK_KEY, ""), salt=_LINK_SALT, max_age=PENDING_MAX_AGE
        )
    except signing.BadSignature:
        return None
    return state if isinstance(state, dict) else None


@public
@never_cache
@require_http_methods(["GET", "POST"])
def sso_link(request: HttpRequest) -> HttpResponse:
    """An account that exists already proves it is its owner's before it is linked."""
    state = _link_state(request)
    provider = _provider_of(state) if state else None
    user = User.objects.filter(pk=state["u"], is_active=True).first() if state else None
    if state is None or provider is None or user is None:
        request.session.pop(LINK_KEY, None)
        messages.error(request, "Your single sign-on took too long. Start again.")
        return redirect("accounts:login")
    with_code = mfa.has_mfa(user)
    form = ConfirmForm(request.POST or None, with_code=with_code)
    if request.method == "POST" and form.is_valid():
        if code := form.cleaned_data.get("code"):
            result = mfa.check_code(user, code, request=request)
            if not result.ok:
                form.add_error("code", result.error)
        else:
            # Through the backends: wrong passwords count towards the account's lock-out.
            again = authenticate(
                request, username=user.email, password=form.cleaned_data["password"]
            )
            if again is None or again.pk != user.pk:
                form.add_error("password", "That password is not correct.")
        if not form.errors:
            request.session.pop(LINK_KEY, None)
            claims = state["c"]
            membership = signin.link_account(
                provider=provider, user=user, subject=str(claims["sub"]), request=request
            )
            return _complete(request, provider, user, membership, claims, state.get("next", ""))
    return render(
        request,
        "federation/link.html",
        {"form": form, "provider": provider, "email": user.email, "with_code": with_code},
        status=400 if form.is_bound else 200,
    )
