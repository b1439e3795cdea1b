"""An account's sign-ins, sign-outs, MFA and lock-outs reach its organizations' trails."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts import trail
from audit.integrity import verify_chain
from audit.models import AuditEvent
from organizations.models import Membership
from tests.accounts.helpers import code, code_step, enroll, password_step, totp_for
from tests.conftest import Org
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _trail(org: Org) -> str:
    response = org.client_for("owner").get(
        reverse("audit:event_list", args=[org.organization.pk]), {"action": "auth.*"}
    )
    assert response.status_code == 200
    return response.content.decode()


def test_the_owner_sees_a_members_sign_in_mfa_sign_out_and_lock_out(org: Org) -> None:
    user = UserFactory(email="grace@example.com")
    MembershipFactory(organization=org.organization, user=user)
    client = Client()
    assert password_step(client, "grace@example.com").status_code == 302
    client.get(reverse("accounts:mfa"))  # starts the setup
    device = user.totpdevice_set.get()
    confirmed = client.post(reverse("accounts:mfa_confirm"), {"code": totp_for(device).now()})
    assert confirmed.status_code == 302
    client.post(reverse("accounts:logout"))
    for _ in range(5):
        password_step(Client(), "grace@example.com", "wrong-password")

    page = _trail(org)
    for message in (
        "grace@example.com signed in",
        "grace@example.com set up an authenticator app",
        "grace@example.com signed out",
        "Failed sign-in for grace@example.com",
        "Sign-in refused for grace@example.com: too many failed attempts",
    ):
        assert message in page, message
    assert verify_chain(org.organization.pk).ok


def test_wrong_codes_reach_the_trail_of_each_organization_of_the_account(org: Org) -> None:
    user = UserFactory(email="grace@example.com")
    MembershipFactory(organization=org.organization, user=user)
    other = MembershipFactory(user=user).organization
    enroll(user)
    client = Client()
    password_step(client, "grace@example.com")
    code_step(client, "000000")

    assert "Wrong authentication code for grace@example.com" in _trail(org)
    failed = AuditEvent.objects.filter(action="auth.mfa.failed", target_id=str(user.pk))
    assert {e.organization_id for e in failed} == {org.organization.pk, other.pk}


def test_another_organizations_trail_does_not_show_them(org: Org) -> None:
    user = UserFactory(email="grace@example.com")
    MembershipFactory(user=user)  # elsewhere only
    password_step(Client(), "grace@example.com")
    assert AuditEvent.objects.filter(action="auth.login.succeeded", actor_user=user).count() == 1
    assert "grace@example.com signed in" not in _trail(org)


def test_an_unknown_emails_failed_sign_in_stays_unscoped() -> None:
    password_step(Client(), "ghost@example.com", "wrong-password")
    event = AuditEvent.objects.get(action="auth.login.failed")
    assert event.organization is None and event.target_label == "ghost@example.com"
    assert event.target_id == ""


def test_an_account_in_no_organization_is_recorded_once_unscoped() -> None:
    user = UserFactory(email="grace@example.com")
    password_step(Client(), "grace@example.com")
    event = AuditEvent.objects.get(action="auth.login.succeeded")
    assert event.organization is None and event.actor_user == user


def test_a_suspended_membership_does_not_receive_the_events(org: Org) -> None:
    user = UserFactory(email="grace@example.com")
    MembershipFactory(organization=org.organization, user=user, status=Membership.Status.SUSPENDED)
    password_step(Client(), "grace@example.com")
    assert "grace@example.com signed in" not in _trail(org)


def test_an_account_in_very_many_organizations_writes_a_bounded_number_of_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trail, "MAX_ORGANIZATIONS", 2)
    user = UserFactory(email="grace@example.com")
    first, second, third = (MembershipFactory(user=user).organization for _ in range(3))
    client = Client()
    enroll(user)
    password_step(client, "grace@example.com")
    device = user.totpdevice_set.get()
    assert code_step(client, code(device)).status_code == 302

    events = AuditEvent.objects.filter(action="auth.login.succeeded")
    assert {e.organization_id for e in events} == {first.pk, second.pk, None}
    assert events.get(organization=None).data == {"organizations_left_out": 1}
    assert third.pk not in {e.organization_id for e in events}


def test_attempts_against_a_locked_account_are_recorded_once_a_minute(org: Org) -> None:
    """Every attempt while locked out is refused; recording each in every organization of
    the account would let anyone flood those trails."""
    user = UserFactory(email="grace@example.com")
    MembershipFactory(organization=org.organization, user=user)
    for _ in range(5):
        password_step(Client(), "grace@example.com", "wrong-password")
    failed = AuditEvent.objects.filter(action="auth.login.failed").count()

    for _ in range(20):
        password_step(Client(), "grace@example.com", "wrong-password")

    assert AuditEvent.objects.filter(action="auth.login.locked_out").count() == 1
    assert AuditEvent.objects.filter(action="auth.login.failed").count() == failed
