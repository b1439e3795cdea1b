from django.urls import include, path

from organizations.views import api_keys as api_key_views
from organizations.views import applications as application_views
from organizations.views import billing as billing_views
from organizations.views import groups as group_views
from organizations.views import invitations as invitation_views
from organizations.views import organizations as organization_views
from organizations.views import people as people_views
from organizations.views import pickers as picker_views
from organizations.views import projects as project_views
from organizations.views import resources as resource_views
from organizations.views import security as security_views

app_name = "organizations"

org_patterns = [
    path("", organization_views.dashboard, name="dashboard"),
    path("settings/", organization_views.organization_settings, name="settings"),
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
    path("projects/", project_views.project_list, name="project_list"),
    path("projects/new/", project_views.project_create, name="project_create"),
    path("projects/<uuid:project_id>/", project_views.project_detail, name="project_detail"),
    path("projects/<uuid:project_id>/edit/", project_views.project_update, name="project_update"),
    path("projects/<uuid:project_id>/row/", project_views.project_row, name="project_row"),
    path("projects/<uuid:project_id>/delete/", project_views.project_delete, name="project_delete"),
    # One pattern per resource type, each guarded by its type's `list` action; reverse
    # with `resource_type=<key>` (the pattern's extra kwarg picks the right one).
    *(
        path(
            f"projects/<uuid:project_id>/resources/{key}/",
            view,
            {"resource_type": key},
            name="resource_list",
        )
        for key, view in resource_views.resource_list_views.items()
    ),
    path("resources/<uuid:resource_id>/", resource_views.resource_detail, name="resource_detail"),
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
    path("leave/", people_views.organization_leave, name="leave"),
    path("ownership/step-down/", people_views.owner_step_down, name="owner_step_down"),
    path("iam/users/", people_views.user_list, name="user_list"),
    path("iam/users/new/", people_views.member_create, name="member_create"),
    path("iam/users/<uuid:membership_id>/", people_views.user_detail, name="user_detail"),
    path("iam/users/<uuid:membership_id>/groups/", people_views.user_groups, name="user_groups"),
    path("iam/users/<uuid:membership_id>/suspend/", people_views.user_suspend, name="user_suspend"),
    path(
        "iam/users/<uuid:membership_id>/reactivate/",
        people_views.user_reactivate,
        name="user_reactivate",
    ),
    path(
        "iam/users/<uuid:membership_id>/password-link/",
        people_views.user_password_link,
        name="user_password_link",
    ),
    path(
        "iam/users/<uuid:membership_id>/make-owner/",
        people_views.user_make_owner,
        name="user_make_owner",
    ),
    path("iam/users/<uuid:membership_id>/remove/", people_views.user_remove, name="user_remove"),
    path("iam/users/<uuid:membership_id>/tags/", people_views.user_tags, name="user_tags"),
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
    # --- the pickers' searches (iamportal.widgets.SearchPick)
    path(
        "pick/policies/<uuid:policy_id>/<str:kind>/",
        picker_views.pick_policy_principals,
        name="pick_policy_principals",
    ),
    path(
        "pick/<str:kind>/<uuid:principal_id>/policies/",
        picker_views.pick_principal_policies,
        name="pick_principal_policies",
    ),
    path(
        "pick/users/<uuid:membership_id>/groups/",
        picker_views.pick_user_groups,
        name="pick_user_groups",
    ),
    path(
        "pick/groups/<uuid:group_id>/users/",
        picker_views.pick_group_members,
        name="pick_group_members",
    ),
    path(
        "pick/groups/<uuid:group_id>/applications/",
        picker_views.pick_group_applications,
        name="pick_group_applications",
    ),
    path(
        "pick/applications/<uuid:application_id>/groups/",
        picker_views.pick_application_groups,
        name="pick_application_groups",
    ),
    path(
        "pick/invitations/groups/",
        picker_views.pick_invitation_groups,
        name="pick_invitation_groups",
    ),
    path("pick/users/new/groups/", picker_views.pick_member_groups, name="pick_member_groups"),
    path(
        "pick/api-keys/applications/",
        picker_views.pick_key_applications,
        name="pick_key_applications",
    ),
    path("pick/api-keys/projects/", picker_views.pick_key_projects, name="pick_key_projects"),
    path(
        "pick/simulator/principals/",
        picker_views.pick_simulator_principals,
        name="pick_simulator_principals",
    ),
    path(
        "pick/simulator/projects/",
        picker_views.pick_simulator_projects,
        name="pick_simulator_projects",
    ),
    path(
        "pick/permissions/users/projects/",
        picker_views.pick_users_permission_projects,
        name="pick_users_permission_projects",
    ),
    path(
        "pick/permissions/applications/projects/",
        picker_views.pick_applications_permission_projects,
        name="pick_applications_permission_projects",
    ),
    path("pick/rules/projects/", picker_views.pick_rule_projects, name="pick_rule_projects"),
    path(
        "pick/guardrails/projects/",
        picker_views.pick_guardrail_projects,
        name="pick_guardrail_projects",
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
        "iam/applications/<uuid:application_id>/tags/",
        application_views.application_tags,
        name="application_tags",
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
    path("iam/api-keys/", api_key_views.api_key_list, name="api_key_list"),
    path("iam/api-keys/new/", api_key_views.api_key_create, name="api_key_create"),
    path(
        "iam/api-keys/<uuid:api_key_id>/created/",
        api_key_views.api_key_created,
        name="api_key_created",
    ),
    path(
        "iam/api-keys/<uuid:api_key_id>/enable/",
        api_key_views.api_key_enable,
        name="api_key_enable",
    ),
    path(
        "iam/api-keys/<uuid:api_key_id>/delete/",
        api_key_views.api_key_delete,
        name="api_key_delete",
    ),
]

urlpatterns = [
    path("", organization_views.home, name="home"),
    path("organizations/", organization_views.organization_list, name="list"),
    path("organizations/switch/", organization_views.organization_switch, name="switch"),
    path("o/<uuid:org_id>/", include(org_patterns)),
    path("invitations/<str:token>/", invitation_views.invitation_accept, name="invitation_accept"),
]
