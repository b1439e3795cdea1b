from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from accounts.sudo import sudo_is_fresh
from policies.models import Policy
from tests.accounts.helpers import code, enroll, expire_sudo
from tests.conftest import Org
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _policy_create_url(org: Org) -> str:
    return reverse("policies:policy_create", args=[org.organization.pk])


def test_signing_in_is_a_fresh_confirmation(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(_policy_create_url(org), {"name": "ops", "description": ""})
    assert response.status_code == 302
    assert Policy.objects.filter(name="ops").exists()


def test_a_stale_confirmation_sends_a_post_back_through_the_confirmation_page(org: Org) -> None:
    client = org.client_for("owner")
    expire_sudo(client)
    list_url = reverse("policies:policy_list", args=[org.organization.pk])
    response = client.post(
        _policy_create_url(org), {"name": "ops"}, HTTP_REFERER=f"http://testserver{list_url}"
    )
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:confirm')}?next={quote(list_url, safe='')}"
    assert not Policy.objects.filter(name="ops").exists()


def test_a_get_returns_to_the_same_page_and_htmx_gets_hx_redirect(org: Org) -> None:
    client = org.client_for("owner")
    expire_sudo(client)
    url = _policy_create_url(org)
    assert client.get(url)["Location"].endswith(f"?next={quote(url, safe='')}")
    response = client.post(
        url,
        {"name": "ops"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{url}",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("accounts:confirm"))


def test_the_guard_answers_before_the_confirmation(org: Org) -> None:
    for who, status in (("billing", 403), ("outsider", 404)):
        client = org.client_for(who)
        expire_sudo(client)
        assert client.post(_policy_create_url(org), {"name": "x"}).status_code == status


def test_confirming_with_the_password_allows_the_action_again(org: Org) -> None:
    client = org.client_for("owner")
    expire_sudo(client)
    next_url = _policy_create_url(org)
    page = client.get(reverse("accounts:confirm"), {"next": next_url})
    assert page.status_code == 200
    assert "Confirm it is you" in page.content.decode()
    wrong = client.post(reverse("accounts:confirm"), {"password": "nope", "next": next_url})
    assert wrong.status_code == 400
    assert "That password is not correct." in wrong.content.decode()
    response = client.post(reverse("accounts:confirm"), {"password": PASSWORD, "next": next_url})
    assert response["Location"] == next_url
    assert client.post(next_url, {"name": "ops"}).status_code == 302


def test_confirming_with_an_authenticator_code(org: Org) -> None:
    device = enroll(org.owner.user)
    client = org.client_for("owner")
    expire_sudo(client)
    response = client.post(reverse("accounts:confirm"), {"code": code(device), "next": "/"})
    assert response.status_code == 302
    assert client.post(_policy_create_url(org), {"name": "ops"}).status_code == 302


def test_the_confirmation_expires(org: Org, settings, rf) -> None:
    client = org.client_for("owner")
    settings.SUDO_MAX_AGE = -1
    response = client.post(_policy_create_url(org), {"name": "ops"})
    assert response["Location"].startswith(reverse("accounts:confirm"))


def test_next_never_leaves_the_site(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(
        reverse("accounts:confirm") + "?next=https://evil.example/", {"password": PASSWORD}
    )
    assert response["Location"] == "/"


def test_the_confirmation_belongs_to_its_user(org: Org) -> None:
    owner = org.client_for("owner")
    token = owner.session["_sudo"]
    other: Client = org.client_for("tech")
    session = other.session
    session["_sudo"] = token
    session.save()

    class _Request:
        pass

    request = _Request()
    request.session = other.session
    request.user = org.tech.user
    assert not sudo_is_fresh(request)  # type: ignore[arg-type]
