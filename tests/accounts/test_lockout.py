from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from accounts.lockout import account_failure_limit
from audit.models import AuditEvent
from tests.accounts.helpers import password_step
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts"


def _fail(client: Client, email: str, times: int) -> list[int]:
    return [password_step(client, email, "wrong-password").status_code for _ in range(times)]


def _text(response) -> str:
    # The page minus its per-request tokens, to compare two answers.
    body = response.content.decode()
    body = re.sub(r'value="[^"]{20,}"', "", body)
    return re.sub(r'nonce="[^"]+"|"X-CSRFToken": "[^"]+"', "", body)


def test_an_account_is_locked_after_five_failures_even_with_the_right_password() -> None:
    UserFactory(email="grace@example.com")
    client = Client()
    assert _fail(client, "grace@example.com", 4) == [200] * 4
    # The fifth failure locks.
    response = password_step(client, "grace@example.com", "wrong-password")
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    response = password_step(client, "GRACE@example.com", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(
        action="auth.login.locked_out", target_label="grace@example.com"
    ).exists()


def test_a_lock_out_looks_the_same_for_an_unknown_email() -> None:
    UserFactory(email="grace@example.com")
    known, unknown = Client(), Client()
    assert _fail(known, "grace@example.com", 4) == _fail(unknown, "ghost@example.com", 4)
    a = password_step(known, "grace@example.com", "wrong-password")
    b = password_step(unknown, "ghost@example.com", "wrong-password")
    assert a.status_code == b.status_code == 429
    assert _text(a) == _text(b)
    assert "grace@example.com" not in a.content.decode()


def test_the_limit_is_the_smallest_of_the_accounts_organizations() -> None:
    user = UserFactory(email="grace@example.com")
    MembershipFactory(user=user, organization__login_failure_limit=8)
    MembershipFactory(user=user, organization__login_failure_limit=3)
    assert account_failure_limit("GRACE@example.com") == 3
    assert account_failure_limit("ghost@example.com") == 5
    client = Client()
    assert _fail(client, "grace@example.com", 3) == [200, 200, 429]


def test_raising_the_organization_limit_takes_effect_at_once() -> None:
    user = UserFactory(email="grace@example.com")
    membership = MembershipFactory(user=user, organization__login_failure_limit=3)
    client = Client()
    assert _fail(client, "grace@example.com", 2) == [200, 200]
    membership.organization.login_failure_limit = 6
    membership.organization.save()
    assert _fail(client, "grace@example.com", 3) == [200, 200, 200]


def test_one_ip_trying_many_accounts_is_locked_out(settings) -> None:
    settings.LOGIN_FAILURE_LIMIT_PER_IP = 4
    UserFactory(email="grace@example.com")
    client = Client()
    for n in range(3):
        assert password_step(client, f"user{n}@example.com", "x").status_code == 200
    assert password_step(client, "user9@example.com", "x").status_code == 429
    # Any account, from that address, while it lasts.
    assert password_step(client, "grace@example.com", PASSWORD).status_code == 429
    # Another address may still sign in.
    other = Client(REMOTE_ADDR="10.0.0.2")
    assert password_step(other, "grace@example.com", PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_accounts_failures() -> None:
    UserFactory(email="grace@example.com")
    client = Client()
    _fail(client, "grace@example.com", 4)
    assert password_step(client, "grace@example.com", PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    assert _fail(client, "grace@example.com", 4) == [200] * 4


def test_wrong_passwords_at_the_confirmation_step_count_too(settings) -> None:
    user = UserFactory(email="grace@example.com")
    client = Client()
    client.force_login(user)
    url = reverse("accounts:confirm")
    for _ in range(4):
        assert client.post(url, {"password": "nope"}).status_code == 400
    assert client.post(url, {"password": "nope"}).status_code == 429
    assert client.post(url, {"password": PASSWORD}).status_code == 429


def test_wrong_passwords_under_any_spelling_count_against_one_counter() -> None:
    UserFactory(email="billing@acme.example")
    client = Client()
    spellings = [
        "Billing@ACME.example",
        "billing@\uff41\uff43\uff4d\uff45.example",  # fullwidth
        "billing@ac\u00adme.example",  # soft hyphen
        "billing@acme\uff0eexample",  # fullwidth dot
    ]
    assert [password_step(client, s, "wrong-password").status_code for s in spellings] == [200] * 4
    assert password_step(client, "billing@acme.example", "wrong").status_code == 429
    assert password_step(client, spellings[1], PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_look_alike_spellings_neither_sign_in_nor_touch_the_accounts_counter() -> None:
    UserFactory(email="billing@acme.example")
    UserFactory(email="sales@acme.example")
    client = Client()
    # Dotless i and long s: PostgreSQL's UPPER() folds them onto "billing" and "sales".
    for spelling in ("b\u0131ll\u0131ng@acme.example", "\u017fales@acme.example") * 3:
        assert password_step(client, spelling, PASSWORD).status_code == 200
    assert "_auth_user_id" not in client.session
    assert not AccessAttempt.objects.exists()
    assert password_step(client, "billing@acme.example", PASSWORD).status_code == 302
    client.post(reverse("accounts:logout"))
    assert password_step(client, "sales@acme.example", PASSWORD).status_code == 302
