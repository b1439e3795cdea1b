"""Claim rules at each federated sign-in, and single sign-on only for password sign-in."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from federation import services
from federation.models import ClaimRule
from tests.conftest import Org
from tests.factories import (
    PASSWORD,
    InvoiceFactory,
    MembershipFactory,
    UserFactory,
)
from tests.federation.conftest import add_provider, sign_in_through


def test_a_claim_puts_the_member_in_a_group_that_grants_billing(
    org: Org, idp, finance_group
) -> None:
    provider = add_provider(
        org.organization, org.owner.user, idp.issuer, scopes="openid email profile groups"
    )
    services.claim_rule_add(
        provider=provider,
        actor=org.owner.user,
        claim="groups",
        operator="contains",
        value="finance",
        group=finance_group,
    )
    invoice = InvoiceFactory(organization=org.organization)
    client = Client()
    assert sign_in_through(client, "finance@acme.test").status_code == 302
    membership = finance_group.members.get()
    assert membership.user.email == "finance@acme.test"
    applied = AuditEvent.objects.get(action="federation.claim_rule.applied")
    assert applied.data["change"] == "added"
    assert applied.data["claim"] == "groups" and applied.data["claim_value"] == ["finance", "staff"]
    assert AuditEvent.objects.filter(action="iam.group.member_added").exists()

    page = client.get(
        reverse("organizations:invoice_detail", args=[org.organization.pk, invoice.pk])
    )
    assert page.status_code == 200
    assert invoice.number.encode() in page.content


def test_a_member_whose_claim_is_gone_leaves_the_group(org: Org, idp, finance_group) -> None:
    provider = add_provider(
        org.organization, org.owner.user, idp.issuer, scopes="openid email profile groups"
    )
    services.claim_rule_add(
        provider=provider,
        actor=org.owner.user,
        claim="groups",
        operator="contains",
        value="finance",
        group=finance_group,
    )
    member = MembershipFactory(
        organization=org.organization,
        user__email="carol@acme.test",
        user__managed_by=org.organization,
    )
    finance_group.members.add(member)
    client = Client()
    assert sign_in_through(client, "carol@acme.test").status_code == 302
    assert not finance_group.members.exists()
    removed = AuditEvent.objects.get(action="federation.claim_rule.applied")
    assert removed.data["change"] == "removed" and removed.data["claim_value"] == []
    invoice = InvoiceFactory(organization=org.organization)
    page = client.get(
        reverse("organizations:invoice_detail", args=[org.organization.pk, invoice.pk])
    )
    assert page.status_code == 403


def test_only_owners_write_claim_rules(org: Org, idp, finance_group) -> None:
    provider = add_provider(org.organization, org.owner.user, idp.issuer)
    with pytest.raises(PermissionDenied):
        services.claim_rule_add(
            provider=provider,
            actor=org.tech.user,
            claim="groups",
            operator="contains",
            value="finance",
            group=finance_group,
        )
    assert not provider.claim_rules.exists()


def _sso_only(org: Org, idp) -> None:
    add_provider(org.organization, org.owner.user, idp.issuer)
    services.sso_required_set(organization=org.organization, actor=org.owner.user, required=True)


def test_sso_only_refuses_password_sign_in_of_managed_members(org: Org, idp) -> None:
    _sso_only(org, idp)
    member = MembershipFactory(
        organization=org.organization,
        user=UserFactory(email="dave@acme.test", managed_by=org.organization),
    )
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": member.user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "Acme signs you in through its identity provider" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="federation.sso.password_refused").exists()
    # The same member still signs in through the provider.
    assert sign_in_through(client, "dave@acme.test").status_code == 302
    assert client.session["_auth_user_id"] == str(member.user.pk)


def test_sso_only_keeps_a_wrong_password_vague(org: Org, idp) -> None:
    _sso_only(org, idp)
    user = UserFactory(email="erin@acme.test", managed_by=org.organization)
    MembershipFactory(organization=org.organization, user=user)
    response = Client().post("/accounts/login/", {"username": user.email, "password": "wrong"})
    assert b"The email or password is not correct." in response.content
    assert b"identity provider" not in response.content.split(b"<h2")[0]


def test_owners_keep_a_break_glass_password_and_code(org: Org, idp) -> None:
    _sso_only(org, idp)
    owner = UserFactory(email="root@acme.test", managed_by=org.organization)
    MembershipFactory(organization=org.organization, user=owner, is_owner=True)
    device = TOTPDevice.objects.create(user=owner, name="app", confirmed=True)
    client = Client()
    step = client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD})
    assert step.status_code == 302 and step["Location"] == "/accounts/mfa/verify/"
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    done = client.post("/accounts/mfa/verify/", {"code": code})
    assert done.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_owners_without_an_authenticator_are_refused_too(org: Org, idp) -> None:
    _sso_only(org, idp)
    owner = UserFactory(email="root@acme.test", managed_by=org.organization)
    MembershipFactory(organization=org.organization, user=owner, is_owner=True)
    client = Client()
    client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_guests_keep_their_own_password(org: Org, idp) -> None:
    _sso_only(org, idp)
    client = Client()
    client.post("/accounts/login/", {"username": org.tech.user.email, "password": PASSWORD})
    assert client.session["_auth_user_id"] == str(org.tech.user.pk)


@pytest.mark.parametrize(
    ("operator", "value", "claims", "matches"),
    [
        ("contains", "finance", {"groups": ["finance", "staff"]}, True),
        ("contains", "finance", {"groups": ["financial"]}, False),
        ("contains", "fin", {"department": "finance"}, True),
        ("equals", "finance", {"department": "finance"}, True),
        ("equals", "finance", {"department": "Finance"}, False),
        ("equals", "true", {"admin": True}, False),
        ("equals", "finance", {}, False),
    ],
)
def test_claim_rule_operators(operator: str, value: str, claims: dict, matches: bool) -> None:
    rule = ClaimRule(claim=next(iter(claims), "groups"), operator=operator, value=value)
    assert rule.matches(claims) is matches
