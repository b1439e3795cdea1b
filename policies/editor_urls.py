from django.urls import path

from policies import attachment_views, views

app_name = "policies"

_rule = "policies/<uuid:policy_id>/rules/<uuid:rule_id>"
# A user (membership id), group or application: the attached-policies panel posts here.
_principal = "principals/<str:kind>/<uuid:principal_id>"

urlpatterns = [
    path("policies/", views.policy_list, name="policy_list"),
    path("policies/new/", views.policy_create, name="policy_create"),
    path("policies/<uuid:policy_id>/", views.policy_detail, name="policy_detail"),
    path("policies/<uuid:policy_id>/edit/", views.policy_update, name="policy_update"),
    path("policies/<uuid:policy_id>/duplicate/", views.policy_duplicate, name="policy_duplicate"),
    path("policies/<uuid:policy_id>/delete/", views.policy_delete, name="policy_delete"),
    path("policies/<uuid:policy_id>/rules/", views.rule_list, name="rule_list"),
    path("policies/<uuid:policy_id>/rules/add/", views.rule_add, name="rule_add"),
    path(f"{_rule}/edit/", views.rule_update, name="rule_update"),
    path(f"{_rule}/move/", views.rule_move, name="rule_move"),
    path(f"{_rule}/remove/", views.rule_remove, name="rule_remove"),
    path("policies/<uuid:policy_id>/attach/", views.policy_attach, name="policy_attach"),
    path(
        "policies/<uuid:policy_id>/detach/<uuid:principal_id>/",
        views.policy_detach,
        name="policy_detach",
    ),
    path(
        "policies/<uuid:policy_id>/detach/<str:kind>/<uuid:principal_id>/",
        views.policy_detach,
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
    path("guardrails/", views.guardrails, name="guardrails"),
    path("guardrails/rules/add/", views.guardrail_rule_add, name="guardrail_rule_add"),
    path("conditions/test/", views.condition_test, name="condition_test"),
]
