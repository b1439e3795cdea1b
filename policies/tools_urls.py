from django.urls import path

from policies import tools_views

app_name = "iamtools"

urlpatterns = [
    path("catalogue/", tools_views.catalogue_view, name="catalogue"),
    path("simulator/", tools_views.simulator, name="simulator"),
    path(
        "users/<uuid:membership_id>/permissions/",
        tools_views.effective_permissions_view,
        name="effective_permissions",
    ),
    path(
        "applications/<uuid:application_id>/permissions/",
        tools_views.application_permissions_view,
        name="application_permissions",
    ),
]
