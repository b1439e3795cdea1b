"""Setting a password from a one-time link (new members, resets sent by IAM managers)."""

from __future__ import annotations

from audit.services import record
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.mfa import has_mfa
from accounts.mfa_views import mfa_pending_begin
from accounts.sessions import sessions_end_others
from accounts.tokens import password_token_find
from audit import events
from policies.guards import public


@public
@never_cache
@require_http_methods(["GET", "POST"])
def password_set(request: HttpRequest, token: str) -> HttpResponse:
    found = password_token_find(token)
    if found is None:
        return render(request, "accounts/password_set.html", {"invalid": True}, status=404)
    user = found.user
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            found.used_at = timezone.now()
            found.save(update_fields=["used_at"])
            record(
                action=events.ACCOUNT_PASSWORD_RESET,
                organization=user.managed_by,
                actor=user,
                target=user,
                request=request,
            )
            sessions_end_others(user=user, keep=None)
        user.backend = "django.contrib.auth.backends.ModelBackend"
        if has_mfa(user):
            # A password link never skips the second step of an enrolled account.
            mfa_pending_begin(request, user=user, next_url=reverse("organizations:home"))
            messages.success(request, "Your password is set. Enter a code to sign in.")
            return redirect("accounts:mfa_verify")
        login(request, user)
        messages.success(request, "Your password is set. Welcome!")
        return redirect("organizations:home")
    status = 400 if request.method == "POST" else 200
    return render(
        request, "accounts/password_set.html", {"form": form, "user": user}, status=status
    )
