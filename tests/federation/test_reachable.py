"""An organization's owner cannot make the console call into the networks it runs in:
provider URLs resolving to loopback, private, link-local or reserved addresses are refused
before any request (unless IAMPORTAL_SSO_PRIVATE_ADDRESSES allows them, as in development
for local providers)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from federation import services
from federation.oidc import ProviderUnavailable, check_reachable
from tests.conftest import Org
from tests.federation.conftest import add_provider

PRIVATE = [
    "https://127.0.0.1/.well-known/openid-configuration",
    "https://localhost/",
    "https://10.0.0.5/",
    "https://192.168.1.1:8443/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/",
    "https://[fd00::1]/",
]


@override_settings(SSO_PRIVATE_ADDRESSES=False)
@pytest.mark.parametrize("url", PRIVATE)
def test_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(ProviderUnavailable, match="private network"):
        check_reachable(url)


@override_settings(SSO_PRIVATE_ADDRESSES=False)
def test_a_public_address_is_let_through() -> None:
    check_reachable("https://93.184.216.34/")  # a literal address: no name to resolve


@override_settings(SSO_PRIVATE_ADDRESSES=True)
def test_the_operator_may_allow_private_networks() -> None:
    check_reachable("https://10.0.0.5/")


@pytest.mark.django_db
@override_settings(SSO_PRIVATE_ADDRESSES=False)
def test_testing_a_provider_on_a_private_network_says_why_and_is_audited(org: Org) -> None:
    provider = add_provider(org.organization, org.owner.user, "https://169.254.169.254")
    ok, message = services.provider_test(provider=provider, actor=org.owner.user)
    assert not ok and "private network" in message
    assert AuditEvent.objects.get(action="federation.provider.tested").result == "failed"
