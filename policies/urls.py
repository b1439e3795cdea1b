"""The policies app's URLs: the policy editor (namespace `policies`) and the IAM tools
(namespace `iamtools`), both under `/o/<org>/iam/`."""

from django.urls import path

from policies.views import attachments as attachment_views
from policies.views import guardrails as guardrail_views
from policies.views import policies as policy_views
from policies.views import rules as rule_views
from policies.views import shrink as shrink_views
from policies.views import tools as tool_views
from policies.views import unused as unused_views
from policies.views import versions as version_views
from policies.views import view_as as view_as_views
from policies.views import who_can as who_can_views

app_name = "policies"

_rule = "policies/<uuid:policy_id>/rules/<uuid:rule_id>"
_version = "policies/<uuid:policy_id>/versions/<int:number>"
# A user (membership id), group or application: the attached-policies panel posts here.
_principal = "principals/<str:kind>/<uuid:principal_id>"

urlpatterns = [
    path("policies/", policy_views.policy_list, name="policy_list"),
    path("policies/new/", policy_views.policy_create, name="policy_create"),
    path("policies/<uuid:policy_id>/", policy_views.policy_detail, name="policy_detail"),
    path("policies/<uuid:policy_id>/edit/", policy_views.policy_update, name="policy_update"),
    path(
        "policies/<uuid:policy_id>/duplicate/",
        policy_views.policy_duplicate,
        name="policy_duplicate",
    ),
    path("policies/<uuid:policy_id>/delete/", policy_views.policy_delete, name="policy_delete"),
    path("policies/<uuid:policy_id>/rules/", rule_views.rule_list, name="rule_list"),
    path("policies/<uuid:policy_id>/rules/add/", rule_views.rule_add, name="rule_add"),
    path(
        "policies/<uuid:policy_id>/rules/resources/",
        rule_views.rule_resources,
        name="rule_resources",
    ),
    path(f"{_rule}/edit/", rule_views.rule_update, name="rule_update"),
    path(f"{_rule}/move/", rule_views.rule_move, name="rule_move"),
    path(f"{_rule}/remove/", rule_views.rule_remove, name="rule_remove"),
    path("policies/<uuid:policy_id>/versions/", version_views.version_list, name="version_list"),
    path(f"{_version}/", version_views.version_detail, name="version_detail"),
    path(f"{_version}/restore/", version_views.version_restore, name="version_restore"),
    path("policies/<uuid:policy_id>/attach/", attachment_views.policy_attach, name="policy_attach"),
    path(
        "policies/<uuid:policy_id>/detach/<uuid:principal_id>/",
        attachment_views.policy_detach,
        name="policy_detach",
    ),
    path(
        "policies/<uuid:policy_id>/detach/<str:kind>/<uuid:principal_id>/",
        attachment_views.policy_detach,
        name="policy_detach_principal",
    ),
    path(
        f"{_principal}/policies/attach/",
        attachment_views.principal_policy_attach,
        name="principal_policy_attach",
    ),
    path(
        f"{_principal}/policies/<uuid:policy_id>/detach/",
        attachment_views.principal_policy_detach,
        name="principal_policy_detach",
    ),
    path("guardrails/", guardrail_views.guardrails, name="guardrails"),
    path("guardrails/rules/add/", guardrail_views.guardrail_rule_add, name="guardrail_rule_add"),
    path(
        "guardrails/rules/resources/",
        rule_views.guardrail_rule_resources,
        name="guardrail_rule_resources",
    ),
    path("conditions/test/", tool_views.condition_test, name="condition_test"),
]

# The IAM tools keep their own namespace (`iamtools:simulator`…): iamportal/urls.py
# includes them beside the editor.
tool_patterns = (
    [
        path("catalogue/", tool_views.catalogue_view, name="catalogue"),
        path("simulator/", tool_views.simulator, name="simulator"),
        path("who-can/", who_can_views.who_can_view, name="who_can"),
        # Unused access (#16): actions held but not used for N days, per principal.
        path("unused-access/", unused_views.unused_access_view, name="unused_access"),
        # Shrink to used: a principal's custom policies narrowed to what it used.
        path(
            "unused-access/users/<uuid:membership_id>/shrink/",
            shrink_views.shrink_view,
            name="shrink_user",
        ),
        path(
            "unused-access/users/<uuid:membership_id>/shrink/save/",
            shrink_views.shrink_save,
            name="shrink_user_save",
        ),
        path(
            "unused-access/applications/<uuid:application_id>/shrink/",
            shrink_views.shrink_view,
            name="shrink_application",
        ),
        path(
            "unused-access/applications/<uuid:application_id>/shrink/save/",
            shrink_views.shrink_save,
            name="shrink_application_save",
        ),
        path(
            "users/<uuid:membership_id>/permissions/",
            tool_views.effective_permissions_view,
            name="effective_permissions",
        ),
        path(
            "applications/<uuid:application_id>/permissions/",
            tool_views.application_permissions_view,
            name="application_permissions",
        ),
        # View as (#16): start from a user's or an application's page; stop from the banner.
        path(
            "users/<uuid:membership_id>/view-as/",
            view_as_views.start,
            name="view_as_user",
        ),
        path(
            "applications/<uuid:application_id>/view-as/",
            view_as_views.start,
            name="view_as_application",
        ),
        path("view-as/stop/", view_as_views.stop, name="view_as_stop"),
    ],
    "iamtools",
)
