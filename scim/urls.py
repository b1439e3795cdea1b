"""The SCIM settings page under the organization, and the SCIM 2.0 endpoints."""

from django.urls import path

from scim import api, views

app_name = "scim"

_scim = "scim/v2/<uuid:org_id>/"

urlpatterns = [
    path("o/<uuid:org_id>/settings/scim/", views.scim_settings, name="settings"),
    path("o/<uuid:org_id>/settings/scim/new/", views.scim_token_add, name="token_add"),
    path("o/<uuid:org_id>/settings/scim/revoke/", views.scim_token_delete, name="token_revoke"),
    path(
        f"{_scim}ServiceProviderConfig",
        api.service_provider_config,
        name="service_provider_config",
    ),
    path(f"{_scim}ResourceTypes", api.resource_types, name="resource_types"),
    path(f"{_scim}ResourceTypes/<str:name>", api.resource_type, name="resource_type"),
    path(f"{_scim}Schemas", api.schemas, name="schemas"),
    path(f"{_scim}Schemas/<str:schema_id>", api.schema, name="schema"),
    path(f"{_scim}Users", api.users, name="users"),
    path(f"{_scim}Users/<str:user_id>", api.user, name="user"),
    path(f"{_scim}Groups", api.groups, name="groups"),
    path(f"{_scim}Groups/<str:group_id>", api.group, name="group"),
]
