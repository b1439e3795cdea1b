from django.urls import path

from federation.views import providers, saml, sso

app_name = "federation"

_settings = "o/<uuid:org_id>/settings/identity-providers/"

urlpatterns = [
    path("sso/oidc/start/", sso.sso_start, name="sso_start"),
    path("sso/oidc/callback/", sso.sso_callback, name="sso_callback"),
    path("sso/link/", sso.sso_link, name="sso_link"),
    path("sso/saml/<uuid:provider_id>/metadata/", saml.saml_metadata, name="saml_metadata"),
    path("sso/saml/<uuid:provider_id>/acs/", saml.saml_acs, name="saml_acs"),
    path(_settings, providers.providers, name="providers"),
    path(f"{_settings}new/", providers.provider_create, name="provider_create"),
    path(f"{_settings}sso-required/", providers.sso_required_update, name="sso_required"),
    path(f"{_settings}<uuid:provider_id>/", providers.provider_update, name="provider_update"),
    path(
        f"{_settings}<uuid:provider_id>/delete/", providers.provider_delete, name="provider_delete"
    ),
    path(f"{_settings}<uuid:provider_id>/test/", providers.provider_test, name="provider_test"),
    path(
        f"{_settings}<uuid:provider_id>/domains/<int:domain_id>/verify/",
        providers.domain_verify,
        name="domain_verify",
    ),
    path(f"{_settings}<uuid:provider_id>/rules/", providers.claim_rule_add, name="claim_rule_add"),
    path(
        f"{_settings}<uuid:provider_id>/rules/<uuid:rule_id>/delete/",
        providers.claim_rule_remove,
        name="claim_rule_remove",
    ),
]
