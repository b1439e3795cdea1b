from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from accounts.forms import CanonicalPasswordResetForm, EmailAuthenticationForm, SignupForm
from accounts.mfa import has_mfa
from accounts.mfa_views import mfa_pending_begin
from accounts.services import account_sign_up
from accounts.sessions import sessions_end_others
from accounts.trail import record_account_event
from audit import events
from policies.guards import public


@public
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        return render(request, "accounts/signup_closed.html", status=404)
    if request.user.is_authenticated:
        return redirect("organizations:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user, organization = account_sign_up(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            full_name=form.cleaned_data["full_name"],
            organization_name=form.cleaned_data["organization_name"],
            request=request,
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome! Your organization {organization.name} is ready.")
        return redirect("organizations:dashboard", org_id=organization.pk)
    return render(request, "accounts/signup.html", {"form": form})


class SignInView(auth_views.LoginView):
    """Email and password; accounts with an authenticator continue at the second step."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True
    extra_context = {"signup_enabled": lambda: settings.SIGNUP_ENABLED}

    def form_valid(self, form: EmailAuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if has_mfa(user):
            mfa_pending_begin(self.request, user=user, next_url=self.get_success_url())
            return redirect("accounts:mfa_verify")
        return super().form_valid(form)


login_view = public(SignInView.as_view())
logout_view = public(auth_views.LogoutView.as_view())
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
