from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

SIGNUP = {
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
    "organization_name": "Analytical Engines",
}


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short. It must contain at least 10 characters."),
        ("password123", "This password is too common."),
        ("4815162342108", "This password is entirely numeric."),
        ("ada@example.org", "The password is too similar to the email address."),
        ("adalovelace1", "The password is too similar to the full name."),
    ],
)
def test_weak_passwords_are_refused_with_a_clear_message(
    client: Client, password: str, message: str
) -> None:
    response = client.post(reverse("accounts:signup"), {**SIGNUP, "password": password})
    assert response.status_code == 200
    assert message in response.content.decode()


def test_the_admin_sign_in_page_asks_for_an_authenticator_code(client: Client) -> None:
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert "otp_token" in response.content.decode()
