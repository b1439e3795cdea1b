from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from organizations.models import Membership, Project
from tests.conftest import Org
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {
    "full_name": "Ada Lovelace",
    "email": "Ada@Example.com",
    "password": "analytical-engine-1843",
    "organization_name": "Analytical Engines",
}


def test_signup_creates_account_organization_default_project_and_owner(client: Client) -> None:
    response = client.post(reverse("accounts:signup"), SIGNUP)

    user = User.objects.get(email="ada@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.is_owner
    assert membership.organization.name == "Analytical Engines"
    project = Project.objects.get(organization=membership.organization)
    assert project.is_default and project.name == "default"
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "organizations:dashboard", args=[membership.organization_id]
    )
    # Signed in straight away.
    assert client.get(response["Location"]).status_code == 200
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "organization.organization.created",
        "auth.account.signed_up",
        "auth.login.succeeded",
    } <= actions


def test_signup_refuses_an_email_that_exists_in_another_case(client: Client) -> None:
    UserFactory(email="ada@example.com")
    response = client.post(reverse("accounts:signup"), SIGNUP)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.count() == 1
    assert Membership.objects.count() == 0


def test_signup_refuses_a_weak_password_and_keeps_the_other_fields(client: Client) -> None:
    response = client.post(reverse("accounts:signup"), {**SIGNUP, "password": "12345678"})
    body = response.content.decode()
    assert "too short" in body or "too common" in body
    assert 'value="Analytical Engines"' in body
    assert not User.objects.exists()


def test_signup_can_be_switched_off(client: Client, settings) -> None:
    settings.SIGNUP_ENABLED = False
    response = client.post(reverse("accounts:signup"), SIGNUP)
    assert response.status_code == 404
    assert "Sign-up is closed" in response.content.decode()
    assert not User.objects.exists()


def test_sign_in_with_email_in_any_case(client: Client) -> None:
    UserFactory(email="grace@example.com")
    response = client.post(
        reverse("accounts:login"), {"username": "GRACE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_failed_sign_in_does_not_reveal_whether_the_account_exists(client: Client) -> None:
    UserFactory(email="grace@example.com")
    url = reverse("accounts:login")
    wrong_password = client.post(url, {"username": "grace@example.com", "password": "nope"})
    no_account = client.post(url, {"username": "nobody@example.com", "password": "nope"})
    assert wrong_password.status_code == no_account.status_code == 200
    assert "The email or password is not correct." in wrong_password.content.decode()
    assert "The email or password is not correct." in no_account.content.decode()
    assert AuditEvent.objects.filter(action="auth.login.failed").count() == 2


def test_sign_out_needs_a_post_and_ends_the_session(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_pages_need_sign_in(client: Client) -> None:
    response = client.get(reverse("organizations:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_password_reset_link_sets_a_new_password_once(client: Client) -> None:
    user = UserFactory(email="linus@example.com")
    client.post(reverse("accounts:password_reset"), {"email": "LINUS@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    response = client.get(link.group(1), follow=True)
    form_url = response.redirect_chain[-1][0]
    new = "a-brand-new-passphrase"
    response = client.post(form_url, {"new_password1": new, "new_password2": new})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert AuditEvent.objects.filter(action="auth.password.reset", actor_user=user).exists()
    # The link is single use.
    again = Client().get(link.group(1), follow=True)
    assert "This link no longer works" in again.content.decode()


def test_password_reset_for_an_unknown_email_looks_the_same(client: Client) -> None:
    response = client.post(reverse("accounts:password_reset"), {"email": "ghost@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_signup_refuses_an_organization_name_with_a_newline(client: Client) -> None:
    response = client.post(reverse("accounts:signup"), {**SIGNUP, "organization_name": "A\nB"})

    assert response.status_code == 200
    assert "organization_name" in response.context["form"].errors
    assert not User.objects.filter(email="ada@example.com").exists()


def test_every_page_offers_your_account_and_two_step_verification(
    owner_client: Client, org: Org
) -> None:
    mfa_link = f'<a href="{reverse("accounts:mfa")}">Two-step verification</a>'
    dashboard = owner_client.get(reverse("organizations:dashboard", args=[org.organization.pk]))
    account = owner_client.get(reverse("accounts:account"))  # a page outside any organization
    for page in (dashboard, account):
        body = page.content.decode()
        assert "Your account" in body and mfa_link in body
    # The organization's own security settings are named as such in the sidebar.
    assert ">Organization security</a>" in dashboard.content.decode()
