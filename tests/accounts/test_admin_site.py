"""The operators' admin signs in with email, password and code in one form."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from accounts.admin_site import NO_AUTHENTICATOR
from audit.models import AuditEvent
from tests.accounts.helpers import code, enroll
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return UserFactory(email="oscar@example.com", is_staff=True, is_superuser=True)


def _sign_in(client: Client, token: str, *, email: str = "oscar@example.com", **extra: str):
    return client.post(
        reverse("admin:login"),
        {"username": email, "password": PASSWORD, "otp_token": token, "next": "/admin/", **extra},
    )


def test_the_first_right_code_signs_in(client: Client, operator) -> None:
    device = enroll(operator)
    response = _sign_in(client, code(device), email="OSCAR@example.com")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session["otp_device_id"] == device.persistent_id
    assert client.get(reverse("admin:index")).status_code == 200


def test_the_form_asks_for_the_code_from_the_first_page(client: Client) -> None:
    page = client.get(reverse("admin:login")).content.decode()
    assert 'name="otp_token"' in page and "Authentication code" in page
    assert "otp_device" not in page


def test_a_backup_code_signs_in_once(client: Client, operator) -> None:
    enroll(operator, backup_codes=("aaaabbbb",))
    assert _sign_in(client, "aaaa-bbbb").status_code == 302
    assert _sign_in(Client(), "aaaabbbb").status_code == 200


def test_a_wrong_code_is_refused_and_audited(client: Client, operator) -> None:
    device = enroll(operator)
    wrong = "123456" if code(device) != "123456" else "654321"
    response = _sign_in(client, wrong)
    assert response.status_code == 200
    assert "That code is not valid." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.mfa.failed", target_id=str(operator.pk)).exists()


def test_no_code_is_checked_for_a_wrong_password(client: Client, operator) -> None:
    device = enroll(operator)
    response = _sign_in(client, "123456", password="wrong-password")
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert not AuditEvent.objects.filter(action="auth.mfa.failed").exists()


def test_staff_without_an_authenticator_are_told_to_set_one_up(client: Client, operator) -> None:
    response = _sign_in(client, "123456")
    assert response.status_code == 200
    assert escape(NO_AUTHENTICATOR) in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_account_that_is_not_staff_is_refused(client: Client) -> None:
    user = UserFactory(email="ada@example.com")
    device = enroll(user)
    response = _sign_in(client, code(device), email="ada@example.com")
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert "_auth_user_id" not in client.session
