from django.urls import include, path

from organizations import billing_views, iam_views, views

app_name = "organizations"

org_patterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.organization_settings, name="settings"),
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
    path("iam/users/", iam_views.user_list, name="user_list"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/", views.organization_list, name="list"),
    path("organizations/switch/", views.organization_switch, name="switch"),
    path("o/<uuid:org_id>/", include(org_patterns)),
]
