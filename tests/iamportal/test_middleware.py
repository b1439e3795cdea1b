from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from organizations.models import Invitation
from tests.conftest import Org

pytestmark = pytest.mark.django_db


def test_an_oversized_invitation_form_is_refused_with_413_before_parsing(org: Org) -> None:
    client = org.client_for("owner")
    url = reverse("organizations:invite", kwargs={"org_id": org.organization.pk})
    emails = " ".join(f"person{n}@example.com" for n in range(75_000))  # about 1.7 MB
    assert len(emails) > 1_700_000
    started = time.perf_counter()
    response = client.post(url, {"emails": emails})
    elapsed = time.perf_counter() - started
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert elapsed < 1.0
    assert not Invitation.objects.exists()


def test_a_body_within_the_limit_passes(org: Org) -> None:
    client = org.client_for("owner")
    url = reverse("organizations:invite", kwargs={"org_id": org.organization.pk})
    emails = " ".join(f"person{n}@example.com" for n in range(50))
    response = client.post(url, {"emails": emails, "role": ""})
    assert response.status_code != 413


def test_the_declared_length_is_checked_whatever_the_path(settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = Client().post(
        reverse("accounts:login"), data=b"x" * 2048, content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert "1 KiB" in response.content.decode()


def test_an_htmx_form_that_redirects_on_success_makes_htmx_navigate(org: Org, owner_client) -> None:
    """Issue #11, point 1: the group was created and the browser swapped the whole group
    page into the create card. Any redirect answering HTMX becomes HX-Redirect."""
    url = reverse("organizations:group_create", args=[org.organization.pk])
    response = owner_client.post(url, {"name": "Finance"}, headers={"HX-Request": "true"})

    group = org.organization.groups.get(name="Finance")
    page = reverse("organizations:group_detail", args=[org.organization.pk, group.pk])
    assert response.status_code == 200
    assert response["HX-Redirect"] == page
    assert response.content == b""
    # Without HTMX, the plain form still gets its redirect.
    plain = owner_client.post(url, {"name": "Ops"})
    assert plain.status_code == 302
