"""Signing up, signing in (the password step) and out."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import EmailAuthenticationForm, SignupForm
from accounts.mfa import has_mfa
from accounts.services import account_sign_up
from accounts.views.mfa import mfa_pending_begin
from federation.signin import record_password_refused, sso_required_refusal
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
        # Checked after the password, so the refusal reveals nothing to a stranger.
        if (organization := sso_required_refusal(user)) is not None:
            record_password_refused(organization=organization, user=user, request=self.request)
            form.add_error(
                None,
                f"{organization.name} signs you in through its identity provider: "
                "use “Sign in with single sign-on” below.",
            )
            return self.form_invalid(form)
        if has_mfa(user):
            mfa_pending_begin(self.request, user=user, next_url=self.get_success_url())
            return redirect("accounts:mfa_verify")
        return super().form_valid(form)


login_view = public(SignInView.as_view())


logout_view = public(auth_views.LogoutView.as_view())
