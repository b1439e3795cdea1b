from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from iamportal.logging import RedactTokensFilter, redact_paths

pytestmark = pytest.mark.django_db

TOKEN = "s3cr3t-Token_value"


def test_an_unknown_invitation_link_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    url = reverse("organizations:invitation_accept", kwargs={"token": TOKEN})
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = Client().get(url)
        assert 400 <= Client().get(url + "missing/").status_code < 500
    assert 400 <= response.status_code < 500
    messages = [record.getMessage() for record in caplog.records]
    assert f"{response.reason_phrase}: /invitations/[redacted]/" in messages
    assert "Not Found: /invitations/[redacted]/missing/" in messages
    assert TOKEN not in caplog.text


def test_a_bad_request_on_a_password_link_logs_no_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = reverse("accounts:password_set", kwargs={"token": TOKEN})
    client = Client(enforce_csrf_checks=True)
    with caplog.at_level(logging.WARNING):
        assert client.post(url, {}).status_code == 403  # no CSRF token
    assert caplog.records and TOKEN not in caplog.text
    assert "/accounts/password/set/[redacted]/" in caplog.text


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("organizations:invitation_accept", {"token": TOKEN}),
        ("accounts:password_set", {"token": TOKEN}),
        ("accounts:password_reset_confirm", {"uidb64": "MTIz", "token": TOKEN}),
    ],
)
def test_every_emailed_link_is_redacted(name: str, kwargs: dict[str, str]) -> None:
    path = reverse(name, kwargs=kwargs)
    redacted = redact_paths(f'"GET {path}?x=1 HTTP/1.1" 404 179')
    assert TOKEN not in redacted and "[redacted]" in redacted


@pytest.mark.parametrize(
    "name", ["accounts:password_reset", "accounts:password_reset_done", "accounts:login"]
)
def test_other_paths_are_kept(name: str) -> None:
    path = reverse(name)
    assert redact_paths(f"Not Found: {path}") == f"Not Found: {path}"
    kept = "/accounts/password-reset/MTIz/set-password/"
    assert redact_paths(kept) == kept


def test_the_runserver_request_line_is_redacted() -> None:
    record = logging.LogRecord(
        "django.server",
        logging.WARNING,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /invitations/{TOKEN}/ HTTP/1.1", "404", "179"),
        None,
    )
    assert RedactTokensFilter().filter(record)
    assert record.getMessage() == '"GET /invitations/[redacted]/ HTTP/1.1" 404 179'
    assert record.args[1] == "404"  # runserver colours by status code
