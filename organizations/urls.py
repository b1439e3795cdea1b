from django.urls import include, path

from organizations import (
    apikey_views,
    application_views,
    billing_views,
    group_views,
    invitation_views,
    security_views,
    user_views,
    views,
)

app_name = "organizations"

org_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.organization_settings, name="settings"),
    path("settings/security/", security_views.security_settings, name="security_settings"),
    path(
        "settings/security/edit/",
        security_views.security_settings_update,
        name="security_settings_update",
    ),
    path(
        "iam/users/<uuid:membership_id>/mfa/reset/",
        security_views.member_mfa_reset,
        name="member_mfa_reset",
    ),
    path(
        "iam/users/<uuid:membership_id>/mfa/unlock/",
        security_views.member_mfa_unlock,
        name="member_mfa_unlock",
    ),
    path("projects/", views.project_list, name="project_list"),
    path("projects/new/", views.project_create, name="project_create"),
    path("projects/<uuid:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<uuid:project_id>/edit/", views.project_update, name="project_update"),
    path("projects/<uuid:project_id>/row/", views.project_row, name="project_row"),
    path("projects/<uuid:project_id>/delete/", views.project_delete, name="project_delete"),
    path("billing/", billing_views.invoice_list, name="invoice_list"),
    path(
        "billing/invoices/<uuid:invoice_id>/", billing_views.invoice_detail, name="invoice_detail"
    ),
    path("billing/contact/", billing_views.billing_contact, name="billing_contact"),
    path(
        "billing/contact/edit/",
        billing_views.billing_contact_update,
        name="billing_contact_update",
    ),
    path("leave/", user_views.organization_leave, name="leave"),
    path("ownership/step-down/", user_views.owner_step_down, name="owner_step_down"),
    path("iam/users/", user_views.user_list, name="user_list"),
    path("iam/users/new/", user_views.member_create, name="member_create"),
    path("iam/users/<uuid:membership_id>/", user_views.user_detail, name="user_detail"),
    path("iam/users/<uuid:membership_id>/groups/", user_views.user_groups, name="user_groups"),
    path("iam/users/<uuid:membership_id>/suspend/", user_views.user_suspend, name="user_suspend"),
    path(
        "iam/users/<uuid:membership_id>/reactivate/",
        user_views.user_reactivate,
        name="user_reactivate",
    ),
    path(
        "iam/users/<uuid:membership_id>/password-link/",
        user_views.user_password_link,
        name="user_password_link",
    ),
    path(
        "iam/users/<uuid:membership_id>/make-owner/",
        user_views.user_make_owner,
        name="user_make_owner",
    ),
    path("iam/users/<uuid:membership_id>/remove/", user_views.user_remove, name="user_remove"),
    path("iam/invitations/", invitation_views.invitation_list, name="invitation_list"),
    path("iam/invitations/new/", invitation_views.invite, name="invite"),
    path(
        "iam/invitations/<uuid:invitation_id>/resend/",
        invitation_views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "iam/invitations/<uuid:invitation_id>/revoke/",
        invitation_views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("iam/groups/", group_views.group_list, name="group_list"),
    path("iam/groups/new/", group_views.group_create, name="group_create"),
    path("iam/groups/<uuid:group_id>/", group_views.group_detail, name="group_detail"),
    path("iam/groups/<uuid:group_id>/edit/", group_views.group_update, name="group_update"),
    path("iam/groups/<uuid:group_id>/delete/", group_views.group_delete, name="group_delete"),
    path("iam/groups/<uuid:group_id>/members/", group_views.group_members, name="group_members"),
    path(
        "iam/groups/<uuid:group_id>/candidates/",
        group_views.group_candidates,
        name="group_candidates",
    ),
    # --- applications and API keys
    path("iam/applications/", application_views.application_list, name="application_list"),
    path(
        "iam/applications/new/",
        application_views.application_create,
        name="application_create",
    ),
    path(
        "iam/applications/<uuid:application_id>/",
        application_views.application_detail,
        name="application_detail",
    ),
    path(
        "iam/applications/<uuid:application_id>/edit/",
        application_views.application_update,
        name="application_update",
    ),
    path(
        "iam/applications/<uuid:application_id>/delete/",
        application_views.application_delete,
        name="application_delete",
    ),
    path(
        "iam/applications/<uuid:application_id>/groups/search/",
        application_views.application_group_search,
        name="application_group_search",
    ),
    path(
        "iam/applications/<uuid:application_id>/groups/add/",
        application_views.application_group_add,
        name="application_group_add",
    ),
    path(
        "iam/applications/<uuid:application_id>/groups/<uuid:group_id>/remove/",
        application_views.application_group_remove,
        name="application_group_remove",
    ),
    path("iam/api-keys/", apikey_views.api_key_list, name="api_key_list"),
    path("iam/api-keys/new/", apikey_views.api_key_create, name="api_key_create"),
    path(
        "iam/api-keys/<uuid:api_key_id>/created/",
        apikey_views.api_key_created,
        name="api_key_created",
    ),
    path(
        "iam/api-keys/<uuid:api_key_id>/delete/",
        apikey_views.api_key_delete,
        name="api_key_delete",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/", views.organization_list, name="list"),
    path("organizations/switch/", views.organization_switch, name="switch"),
    path("o/<uuid:org_id>/", include(org_patterns)),
    path("invitations/<str:token>/", invitation_views.invitation_accept, name="invitation_accept"),
]
