"""Passwords: resetting a forgotten one, and setting one from a one-time link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.forms import CanonicalPasswordResetForm
from accounts.mfa import has_mfa
from accounts.sessions import sessions_end_others
from accounts.tokens import password_token_find
from accounts.trail import record_account_event
from accounts.views.mfa import mfa_pending_begin
from audit import events
from audit.services import record
from federation.signin import record_password_refused, sso_required_refusal
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
            # A link is no way around the single-sign-on-only rule the sign-in page applies.
            refusing = sso_required_refusal(user)
            if refusing is not None:
                record_password_refused(organization=refusing, user=user, request=request)
        if refusing is not None:
            messages.info(
                request,
                f"Your password is set, but {refusing.name} signs you in through its "
                "identity provider: sign in with single sign-on.",
            )
            return redirect("federation:sso_start")
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


password_reset = public(
    auth_views.PasswordResetView.as_view(
        template_name="accounts/password_reset.html",
        form_class=CanonicalPasswordResetForm,
        email_template_name="accounts/email/password_reset.txt",
        subject_template_name="accounts/email/password_reset_subject.txt",
        success_url=reverse_lazy("accounts:password_reset_done"),
    )
)


password_reset_done = public(
    auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")
)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            # Django already refuses sessions signed in with the old password; end them
            # in the store too, so they vanish from the account page at once.
            sessions_end_others(user=form.user, keep=self.request.session.session_key)
            record_account_event(
                action=events.ACCOUNT_PASSWORD_RESET,
                account=form.user,
                actor=form.user,
                request=self.request,
            )
        return response


password_reset_confirm = public(PasswordResetConfirmView.as_view())


password_reset_complete = public(
    auth_views.PasswordResetCompleteView.as_view(
        template_name="accounts/password_reset_complete.html"
    )
)
