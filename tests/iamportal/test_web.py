from __future__ import annotations

import re

import pytest
from django.core.checks import run_checks
from django.db import DatabaseError
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path, reverse

from tests.conftest import Org


def _undeclared(request: object) -> HttpResponse:
    return HttpResponse("no access rule")


urlpatterns = [path("leaky/", _undeclared)]


@pytest.mark.django_db
def test_healthz_reports_the_database(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_is_down(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_cursor(*args: object, **kwargs: object) -> None:
        raise DatabaseError("connection refused")

    monkeypatch.setattr("iamportal.views.connection.cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_every_url_declares_its_access() -> None:
    errors = [e for e in run_checks() if e.id == "policies.E001"]
    assert errors == []


@override_settings(ROOT_URLCONF=__name__)
def test_a_view_without_access_rule_fails_the_system_check() -> None:
    errors = [e for e in run_checks() if e.id == "policies.E001"]
    assert len(errors) == 1
    assert "leaky/" in errors[0].msg


@pytest.mark.django_db
def test_pages_carry_a_strict_csp_and_no_inline_script(owner_client: Client, org: Org) -> None:
    response = owner_client.get(reverse("organizations:dashboard", args=[org.organization.pk]))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    scripts = re.findall(r"<script([^>]*)>", response.content.decode())
    assert scripts, "htmx and the app script are loaded"
    for attributes in scripts:
        assert "src=" in attributes, "no inline scripts"
        assert f'nonce="{nonce}"' in attributes
    assert " style=" not in response.content.decode()


@pytest.mark.django_db
def test_htmx_requests_carry_the_csrf_token(owner_client: Client, org: Org) -> None:
    response = owner_client.get(reverse("organizations:dashboard", args=[org.organization.pk]))
    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[\w-]+\"\}'", response.content.decode())


@pytest.mark.django_db
def test_csrf_is_enforced() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("accounts:login"), {"username": "a@b.c", "password": "x"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_security_headers(client: Client) -> None:
    response = client.get(reverse("accounts:login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_favicon_ico_leads_to_the_icon(client: Client) -> None:
    # The operators' admin names no icon: browsers ask /favicon.ico (issue #11, point 5).
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")
