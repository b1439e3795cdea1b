"""Builders of federation's write URLs for tests/audit/test_completeness.py's tables
(`WRITES.update(WRITES_FEDERATION)`, `NO_EVENT.update(NO_EVENT_FEDERATION)`)."""

from __future__ import annotations

import time
from typing import Any

from django.core import signing
from django.test import Client

from federation.models import ClaimRule
from federation.views import sso
from tests.factories import PASSWORD, GroupFactory, UserFactory
from tests.federation.conftest import CLIENT_ID, CLIENT_SECRET, add_provider
from tests.federation.saml_idp import add_saml_provider, idp_login, running_saml_idp, start_saml

Built = tuple[dict[str, Any], dict[str, Any]]


def _provider(ctx: Any, issuer: str = "https://idp.acme.test"):
    return add_provider(ctx.organization, ctx.org.owner.user, issuer)


def _provider_form(**extra: str) -> dict[str, str]:
    return {
        "name": "Acme SSO",
        "issuer": "https://idp.acme.test",
        "client_id": "console",
        "client_secret": CLIENT_SECRET,
        "domains": "acme.test",
        "scopes": "openid email profile",
        "enabled": "on",
        **extra,
    }


def _claim_rule_add(ctx: Any) -> Built:
    provider = _provider(ctx)
    group = GroupFactory(organization=ctx.organization)
    data = {"claim": "groups", "operator": "contains", "value": "x", "group": group.name}
    return {"provider_id": provider.pk}, data


def _claim_rule_remove(ctx: Any) -> Built:
    provider = _provider(ctx)
    group = GroupFactory(organization=ctx.organization)
    rule = ClaimRule.objects.create(provider=provider, claim="groups", value="x", group=group)
    return {"provider_id": provider.pk, "rule_id": rule.pk}, {}


def _domain_verify(ctx: Any) -> Built:
    """No TXT record in the test domain's DNS: the refused verification is recorded."""
    provider = add_provider(ctx.organization, ctx.org.owner.user, "https://idp.acme.test")
    claim = provider.domains.create(domain="unverified.invalid", verification_token="t")
    return {"provider_id": provider.pk, "domain_id": claim.pk}, {}


def _sso_required(ctx: Any) -> Built:
    _provider(ctx)  # single sign-on only needs an enabled provider
    return {}, {"sso_required": "on"}


def _sso_link(ctx: Any) -> Built:
    """A guest proving its password before its account is linked to the provider."""
    provider = _provider(ctx)
    guest = UserFactory(email="guest@acme.test")
    ctx.client = Client()
    session = ctx.client.session
    session[sso.LINK_KEY] = signing.dumps(
        {"u": str(guest.pk), "p": str(provider.pk), "c": {"sub": "guest"}, "t": time.time()},
        salt=sso._LINK_SALT,
    )
    session.save()
    return {}, {"password": PASSWORD}


def _saml_acs(ctx: Any) -> Built:
    """A new person's answer from the test SAML IdP (stopped once it has answered)."""
    with running_saml_idp() as idp:
        provider = add_saml_provider(ctx.organization, ctx.org.owner.user, idp)
        ctx.client = Client()
        answer = idp_login(start_saml(ctx.client, "newcomer@acme.test"), "newcomer@acme.test")
    return {"provider_id": provider.pk}, answer.data


WRITES_FEDERATION = {
    "federation:provider_create": lambda ctx: ({}, _provider_form()),
    "federation:provider_update": lambda ctx: (
        {"provider_id": _provider(ctx).pk},
        _provider_form(name="Renamed", client_id=CLIENT_ID, client_secret=""),
    ),
    "federation:provider_delete": lambda ctx: ({"provider_id": _provider(ctx).pk}, {}),
    # A provider that is down: the failed test is recorded too.
    "federation:provider_test": lambda ctx: (
        {"provider_id": _provider(ctx, "http://127.0.0.1:9").pk},
        {},
    ),
    "federation:domain_verify": _domain_verify,
    "federation:claim_rule_add": _claim_rule_add,
    "federation:claim_rule_remove": _claim_rule_remove,
    "federation:sso_required": _sso_required,
    "federation:sso_link": _sso_link,
    "federation:saml_acs": _saml_acs,
}

NO_EVENT_FEDERATION = {
    "federation:sso_start": "sends the browser to the provider and changes nothing; the "
    "callback records the sign-in or its refusal (and a provider that is down is recorded)",
}
