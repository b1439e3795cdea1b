"""Single sign-on only: a password link neither opens a password session nor is sent."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import PasswordToken
from accounts.tokens import password_token_issue
from audit.models import AuditEvent
from federation import services
from organizations.models import Membership
from tests.conftest import Org
from tests.factories import MembershipFactory, UserFactory
from tests.federation.conftest import add_provider

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "member-pass-2026!"


def _sso_only(org: Org, idp) -> None:
    add_provider(org.organization, org.owner.user, idp.issuer)
    services.sso_required_set(organization=org.organization, actor=org.owner.user, required=True)


def _managed(org: Org, email: str, *, is_owner: bool = False) -> Membership:
    user = UserFactory(email=email, managed_by=org.organization)
    return MembershipFactory(organization=org.organization, user=user, is_owner=is_owner)


def _set_password(client: Client, membership: Membership):
    token = password_token_issue(user=membership.user)
    url = reverse("accounts:password_set", kwargs={"token": token})
    return client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})


@pytest.mark.parametrize("with_authenticator", [False, True])
def test_a_password_link_does_not_sign_a_member_in(org: Org, idp, with_authenticator: bool) -> None:
    _sso_only(org, idp)
    member = _managed(org, "dave@acme.test")
    if with_authenticator:
        TOTPDevice.objects.create(user=member.user, name="app", confirmed=True)
    client = Client()
    response = _set_password(client, member)
    assert response.status_code == 302
    assert response["Location"] == reverse("federation:sso_start")
    assert "_auth_user_id" not in client.session
    assert "signs you in through its identity provider" in str(
        next(iter(get_messages(response.wsgi_request)))
    )
    member.user.refresh_from_db()
    assert member.user.check_password(NEW_PASSWORD)  # set, but only for when SSO is off
    assert not PasswordToken.objects.filter(user=member.user, used_at__isnull=True).exists()
    refused = AuditEvent.objects.get(action="federation.sso.password_refused")
    assert refused.organization_id == org.organization.pk


def test_an_owner_with_an_authenticator_continues_to_the_second_step(org: Org, idp) -> None:
    _sso_only(org, idp)
    owner = _managed(org, "root@acme.test", is_owner=True)
    TOTPDevice.objects.create(user=owner.user, name="app", confirmed=True)
    client = Client()
    response = _set_password(client, owner)
    assert response["Location"] == reverse("accounts:mfa_verify")
    assert not AuditEvent.objects.filter(action="federation.sso.password_refused").exists()


def test_without_sso_only_the_link_signs_the_member_in(org: Org) -> None:
    member = _managed(org, "dave@acme.test")
    client = Client()
    response = _set_password(client, member)
    assert response["Location"] == reverse("organizations:home")
    assert client.session["_auth_user_id"] == str(member.user.pk)


def test_no_password_link_is_sent_to_a_member(
    org: Org, idp, django_capture_on_commit_callbacks
) -> None:
    _sso_only(org, idp)
    member = _managed(org, "dave@acme.test")
    url = reverse("organizations:user_password_link", args=[org.organization.pk, member.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = org.client_for("owner").post(url, follow=True)
    assert response.status_code == 200
    assert "requires single sign-on" in response.content.decode()
    assert not mail.outbox
    assert not PasswordToken.objects.filter(user=member.user).exists()
    assert not AuditEvent.objects.filter(action="iam.user.password_link_sent").exists()
