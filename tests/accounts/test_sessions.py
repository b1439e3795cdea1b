from __future__ import annotations

import re
import time

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import UserSession
from accounts.sessions import STARTED_KEY
from audit.models import AuditEvent
from tests.accounts.helpers import password_step
from tests.conftest import Org
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def _signed_in(email: str, agent: str, ip: str = "127.0.0.1") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert password_step(client, email).status_code == 302
    return client


def test_signing_in_records_the_session_and_the_account_page_lists_it() -> None:
    UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX, "192.0.2.10")
    _signed_in("ada@example.com", SAFARI, "198.51.100.7")
    page = laptop.get(reverse("accounts:account")).content.decode()
    assert "Firefox on Linux" in page and "192.0.2.10" in page
    assert "Safari on iOS" in page and "198.51.100.7" in page
    assert page.count("This browser") == 1
    assert "End all other sessions (1)" in page


def test_ending_a_session_signs_that_browser_out() -> None:
    user = UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX)
    phone = _signed_in("ada@example.com", SAFARI)
    phone_key = phone.session.session_key
    row = UserSession.objects.get(session_key=phone_key)

    response = laptop.post(reverse("accounts:end_session", args=[row.pk]))
    assert response.status_code == 302
    assert not UserSession.objects.filter(pk=row.pk).exists()
    assert phone.get(reverse("organizations:list")).status_code == 302
    assert laptop.get(reverse("organizations:list")).status_code == 200
    assert AuditEvent.objects.filter(action="auth.session.ended", actor_user=user).exists()


def test_end_all_other_sessions_keeps_this_one() -> None:
    UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX)
    others = [_signed_in("ada@example.com", SAFARI) for _ in range(2)]
    response = laptop.post(reverse("accounts:end_other_sessions"), follow=True)
    assert "2 other sessions ended." in response.content.decode()
    for other in others:
        assert other.get(reverse("organizations:list")).status_code == 302
    assert laptop.get(reverse("organizations:list")).status_code == 200
    assert UserSession.objects.count() == 1


def test_another_users_session_cannot_be_ended() -> None:
    UserFactory(email="ada@example.com")
    UserFactory(email="bob@example.com")
    ada = _signed_in("ada@example.com", FIREFOX)
    bob = _signed_in("bob@example.com", FIREFOX)
    bobs = UserSession.objects.get(session_key=bob.session.session_key)
    assert ada.post(reverse("accounts:end_session", args=[bobs.pk])).status_code == 404
    assert bob.get(reverse("organizations:list")).status_code == 200


def test_last_seen_is_written_at_most_once_a_minute(django_assert_num_queries) -> None:
    UserFactory(email="ada@example.com")
    client = _signed_in("ada@example.com", FIREFOX)
    row = UserSession.objects.get()
    seen = row.last_seen_at
    client.get(reverse("accounts:account"))
    row.refresh_from_db()
    assert row.last_seen_at == seen
    # A minute later, the next request moves it.
    session = client.session
    session["_session_seen"]["t"] -= 61
    session.save()
    client.get(reverse("accounts:account"))
    row.refresh_from_db()
    assert row.last_seen_at > seen


def test_a_password_reset_ends_every_session() -> None:
    UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX)
    anonymous = Client()
    anonymous.post(reverse("accounts:password_reset"), {"email": "ada@example.com"})
    link = re.search(r"http://testserver(/accounts/password-reset/\S+/)", mail.outbox[0].body)
    form_url = anonymous.get(link.group(1), follow=True).redirect_chain[-1][0]
    new = "a-brand-new-passphrase"
    anonymous.post(form_url, {"new_password1": new, "new_password2": new})
    assert laptop.get(reverse("organizations:list")).status_code == 302
    assert not UserSession.objects.exists()


def test_sessions_signed_out_elsewhere_drop_from_the_list() -> None:
    UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX)
    phone = _signed_in("ada@example.com", SAFARI)
    phone.post(reverse("accounts:logout"))
    page = laptop.get(reverse("accounts:account")).content.decode()
    assert "Safari on iOS" not in page
    assert UserSession.objects.count() == 1


def test_an_organizations_maximum_session_length_signs_old_sessions_out(org: Org) -> None:
    org.organization.session_max_age_hours = 1
    org.organization.save()
    client = org.client_for("tech")
    url = reverse("organizations:dashboard", args=[org.organization.pk])
    assert client.get(url).status_code == 200
    session = client.session
    session[STARTED_KEY] = time.time() - 2 * 3600
    session.save()
    response = client.get(url, follow=True)
    assert response.redirect_chain[0][0].startswith(reverse("accounts:login"))
    assert "Acme limits sessions to 1 hour." in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Pages of no organization are not affected by its limit, but the session is gone.
    assert client.get(reverse("organizations:list")).status_code == 302


def test_signing_in_again_starts_a_new_session_age(org: Org) -> None:
    org.organization.session_max_age_hours = 1
    org.organization.save()
    org.tech.user.email = "tech@example.com"
    org.tech.user.save()
    client = Client()
    password_step(client, "tech@example.com", PASSWORD)
    url = reverse("organizations:dashboard", args=[org.organization.pk])
    assert client.get(url).status_code == 200


def test_ending_this_browsers_session_signs_out_here() -> None:
    UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX)
    row = UserSession.objects.get(session_key=laptop.session.session_key)
    session = laptop.session
    session["_session_seen"]["t"] -= 61  # the end-of-request touch would run too
    session.save()
    response = laptop.post(reverse("accounts:end_session", args=[row.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("accounts:login")
    assert laptop.get(reverse("organizations:list")).status_code == 302
    assert not UserSession.objects.exists()


@pytest.mark.postgres
def test_control_characters_in_headers_do_not_break_sign_in_on_postgresql() -> None:
    from axes.models import AccessAttempt

    user = UserFactory(email="ada@example.com")
    headers = {"HTTP_USER_AGENT": "Mozilla\x00", "HTTP_ACCEPT": "text/html\x00"}
    failing = Client(**headers)
    assert password_step(failing, "ada@example.com", "wrong-password").status_code == 200
    assert AccessAttempt.objects.get().user_agent == "Mozilla"
    client = _signed_in("ada@example.com", "Mozilla\x00")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert UserSession.objects.get(user=user).user_agent == "Mozilla"
    signed_in = AuditEvent.objects.get(action="auth.login.succeeded", actor_user=user)
    assert signed_in.user_agent == "Mozilla"


def test_the_account_page_reads_all_sessions_in_one_query() -> None:
    """A session's data is read with the others, not one query per session."""
    UserFactory(email="ada@example.com")
    laptop = _signed_in("ada@example.com", FIREFOX)
    for _ in range(2):
        _signed_in("ada@example.com", SAFARI)
    laptop.get(reverse("accounts:account"))
    with CaptureQueriesContext(connection) as few:
        laptop.get(reverse("accounts:account"))
    for _ in range(6):
        _signed_in("ada@example.com", SAFARI)
    with CaptureQueriesContext(connection) as many:
        page = laptop.get(reverse("accounts:account")).content.decode()
    assert "End all other sessions (8)" in page
    assert len(many) == len(few)
