"""Two-step verification: the second sign-in step, setting up and removing the authenticator
app, backup codes, and confirming it is you before sensitive actions."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import mfa
from accounts.forms import CodeForm, ConfirmForm, EnrollForm
from accounts.middleware import member_mfa_status
from accounts.models import User
from accounts.sudo import safe_next, sudo_grant, sudo_is_fresh, sudo_required
from accounts.trail import record_account_event
from audit import events
from iamportal.forms import save_form
from organizations.selectors.organizations import membership_for
from policies.guards import public, signed_in

PENDING_KEY = "_mfa_pending"


_PENDING_SALT = "accounts.mfa.pending"


PENDING_MAX_FAILURES = 5


NEW_CODES_KEY = "_mfa_new_codes"


ENROLL_NEXT_KEY = "_mfa_enroll_next"


REMOVE_FORM_ID = "remove-%s"  # the field ids of the "Remove the authenticator app" form


def mfa_pending_begin(request: HttpRequest, *, user: User, next_url: str) -> None:
    """The password was right: remember who signs in until their code is checked.

    Nothing is signed in yet; the state is signed and lives `MFA_PENDING_MAX_AGE`.
    """
    request.session.cycle_key()
    request.session[PENDING_KEY] = signing.dumps(
        {"u": str(user.pk), "b": user.backend, "n": next_url, "f": 0, "t": time.time()},
        salt=_PENDING_SALT,
    )


def _pending(request: HttpRequest) -> dict[str, Any] | None:
    token = request.session.get(PENDING_KEY)
    if not token:
        return None
    try:
        pending = signing.loads(token, salt=_PENDING_SALT)
    except signing.BadSignature:
        return {"expired": True}
    # Counted from the password step: wrong codes do not extend it.
    if time.time() - float(pending.get("t", 0)) > settings.MFA_PENDING_MAX_AGE:
        return {"expired": True}
    return pending


def _restart_sign_in(request: HttpRequest, message: str) -> HttpResponse:
    request.session.pop(PENDING_KEY, None)
    messages.error(request, message)
    return redirect("accounts:login")


@public
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    """Ask for a TOTP or backup code: after the password, or to step up a signed-in session."""
    pending = _pending(request)
    if pending is not None and pending.get("expired"):
        return _restart_sign_in(
            request, "Your sign-in took too long. Enter your email and password again."
        )
    if pending is not None:
        user = User.objects.filter(pk=pending["u"], is_active=True).first()
        if user is None or not mfa.has_mfa(user):
            return _restart_sign_in(request, "Sign in again.")
        next_url = safe_next(request, pending.get("n"), reverse(settings.LOGIN_REDIRECT_URL))
    elif request.user.is_authenticated and not mfa.is_verified(request):
        user = request.user
        if not mfa.has_mfa(user):
            return redirect("accounts:mfa")
        next_url = safe_next(request, request.GET.get("next"), reverse(settings.LOGIN_REDIRECT_URL))
    elif request.user.is_authenticated:
        return redirect(safe_next(request, request.GET.get("next"), "/"))
    else:
        return redirect("accounts:login")

    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = mfa.check_code(user, form.cleaned_data["code"], request=request)
        if result.ok:
            if pending is not None:
                request.session.pop(PENDING_KEY, None)
                user.otp_device = result.device  # django-otp keeps it in the session
                login(request, user, backend=pending["b"])
            else:
                request.session.cycle_key()
                otp_login(request, result.device)
            if result.used_backup_code:
                record_account_event(
                    action=events.AUTH_MFA_BACKUP_CODE_USED,
                    account=user,
                    actor=user,
                    request=request,
                )
                left = mfa.backup_codes_left(user)
                messages.warning(
                    request,
                    f"You signed in with a backup code; {left} left. "
                    "Generate new ones from your MFA page if you are running out.",
                )
            return redirect(next_url)
        form.add_error("code", result.error)
        if pending is not None and not result.throttled:
            pending["f"] = int(pending.get("f", 0)) + 1
            if pending["f"] >= PENDING_MAX_FAILURES:
                return _restart_sign_in(
                    request, "Too many wrong codes. Enter your email and password again."
                )
            request.session[PENDING_KEY] = signing.dumps(pending, salt=_PENDING_SALT)
    return render(
        request,
        "accounts/mfa_verify.html",
        {"form": form, "step_up": pending is None},
        status=400 if form.is_bound else 200,
    )


@signed_in
@require_http_methods(["GET"])
def mfa_required(request: HttpRequest) -> HttpResponse:
    """Why an organization's pages are locked: MFA is required and its deadline passed."""
    membership = membership_for(
        user=request.user, organization_id=_uuid_or_none(request.GET.get("org"))
    )
    next_url = safe_next(request, request.GET.get("next"), reverse("organizations:home"))
    status = member_mfa_status(request, membership)
    if status.state != "locked":
        return redirect(next_url)
    return render(
        request,
        "accounts/mfa_locked.html",
        {
            "locked_organization": membership.organization,
            "deadline": status.deadline,
            "enroll_url": f"{reverse('accounts:mfa')}?{urlencode({'next': next_url})}",
        },
    )


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


def _enroll_context(device: TOTPDevice, form: EnrollForm) -> dict[str, Any]:
    """The MFA page while an authenticator is being set up."""
    return {
        "enrolling": True,
        "qr_svg": mfa.qr_svg(device),
        "secret": mfa.secret_of(device),
        "form": form,
    }


def _manage_context(request: HttpRequest, device: TOTPDevice, form: CodeForm) -> dict[str, Any]:
    """The MFA page once an authenticator is set up."""
    return {
        "device": device,
        "codes_left": mfa.backup_codes_left(request.user),
        "remove_form": form,
        "verified": mfa.is_verified(request),
    }


@signed_in
@never_cache  # shows the TOTP secret, its QR code and new backup codes
@require_http_methods(["GET"])
def mfa_page(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator (QR code, secret, confirm) or manage the one set up."""
    user = request.user
    next_url = request.GET.get("next")
    if next_url:
        request.session[ENROLL_NEXT_KEY] = safe_next(request, next_url, "")
    new_codes = request.session.pop(NEW_CODES_KEY, None)
    context: dict[str, Any] = {
        "new_codes": new_codes,
        "continue_url": request.session.get(ENROLL_NEXT_KEY) if new_codes else None,
    }
    device = mfa.totp_device_of(user)
    if device is None:
        device = mfa.mfa_enrollment_start(user=user)
        context.update(_enroll_context(device, EnrollForm()))
    else:
        if new_codes:
            request.session.pop(ENROLL_NEXT_KEY, None)
        context.update(_manage_context(request, device, CodeForm(auto_id=REMOVE_FORM_ID)))
    return render(request, "accounts/mfa.html", context)


@signed_in
@never_cache  # a wrong code shows the TOTP secret again
@require_POST
def mfa_confirm(request: HttpRequest) -> HttpResponse:
    form = EnrollForm(request.POST)
    if saved := save_form(
        form,
        lambda data: mfa.mfa_enrollment_confirm(
            user=request.user, code=data["code"], request=request
        ),
    ):
        codes = saved.value
        request.session[NEW_CODES_KEY] = codes
        messages.success(request, "Your authenticator app is set up.")
        return redirect("accounts:mfa")
    device = mfa.totp_device_of(request.user, confirmed=False)
    if device is None:
        return redirect("accounts:mfa")
    return render(request, "accounts/mfa.html", _enroll_context(device, form), status=400)


@signed_in
@sudo_required
@require_POST
def mfa_backup_codes(request: HttpRequest) -> HttpResponse:
    try:
        codes = mfa.mfa_backup_codes_regenerate(user=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        request.session[NEW_CODES_KEY] = codes
        messages.success(request, "New backup codes generated; the old ones no longer work.")
    return redirect("accounts:mfa")


@signed_in
@require_POST
def mfa_remove(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST, auto_id=REMOVE_FORM_ID)
    if save_form(
        form, lambda data: mfa.mfa_remove(user=request.user, code=data["code"], request=request)
    ):
        messages.success(
            request, "Authenticator app and backup codes removed. Your other sessions ended."
        )
        return redirect("accounts:mfa")
    device = mfa.totp_device_of(request.user)
    if device is None:
        return redirect("accounts:mfa")
    return render(request, "accounts/mfa.html", _manage_context(request, device, form), status=400)


@signed_in
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """Confirm the password (or a code) to unlock sensitive actions for a few minutes."""
    user = request.user
    next_url = safe_next(request, request.GET.get("next") or request.POST.get("next"), "/")
    with_code = mfa.has_mfa(user)
    form = ConfirmForm(request.POST or None, with_code=with_code)
    if request.method == "GET" and sudo_is_fresh(request):
        return redirect(next_url)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data.get("code")
        if code:
            result = mfa.check_code(user, code, request=request)
            ok = result.ok
            if not ok:
                form.add_error("code", result.error)
        else:
            # Through the authentication backends: wrong passwords count towards lock-out.
            again = authenticate(
                request, username=user.email, password=form.cleaned_data["password"]
            )
            ok = again is not None and again.pk == user.pk
            if not ok:
                form.add_error("password", "That password is not correct.")
        if ok:
            sudo_grant(request)
            messages.success(request, "Confirmed. You can continue.")
            return redirect(next_url)
    return render(
        request,
        "accounts/confirm.html",
        {"form": form, "next": next_url, "minutes": settings.SUDO_MAX_AGE // 60},
        status=400 if form.is_bound else 200,
    )
