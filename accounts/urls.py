from django.urls import path

from accounts.views import account as account_views
from accounts.views import mfa as mfa_views
from accounts.views import passwords as password_views
from accounts.views import sign_in as sign_in_views

app_name = "accounts"

urlpatterns = [
    path("signup/", sign_in_views.signup, name="signup"),
    path("login/", sign_in_views.login_view, name="login"),
    path("logout/", sign_in_views.logout_view, name="logout"),
    path("", account_views.account, name="account"),
    path("sessions/<uuid:session_id>/end/", account_views.end_session, name="end_session"),
    path("sessions/end-others/", account_views.end_other_sessions, name="end_other_sessions"),
    path("mfa/", mfa_views.mfa_page, name="mfa"),
    path("mfa/confirm/", mfa_views.mfa_confirm, name="mfa_confirm"),
    path("mfa/backup-codes/", mfa_views.mfa_backup_codes, name="mfa_backup_codes"),
    path("mfa/remove/", mfa_views.mfa_remove, name="mfa_remove"),
    path("mfa/verify/", mfa_views.mfa_verify, name="mfa_verify"),
    path("mfa/required/", mfa_views.mfa_required, name="mfa_required"),
    path("confirm/", mfa_views.confirm, name="confirm"),
    path("password/set/<str:token>/", password_views.password_set, name="password_set"),
    path("password-reset/", password_views.password_reset, name="password_reset"),
    path("password-reset/sent/", password_views.password_reset_done, name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        password_views.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path(
        "password-reset/complete/",
        password_views.password_reset_complete,
        name="password_reset_complete",
    ),
]
