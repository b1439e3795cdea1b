"""`/api/v1/security`: read and update the security settings, validated by the console's
form, audited with the key as the actor."""

from __future__ import annotations

from typing import Any

import pytest

from audit import events
from organizations.models import Organization
from tests.api.conftest import PERSONAS, allowed, call, last_event, persona_api
from tests.conftest import Org

pytestmark = pytest.mark.django_db


def test_read(org: Org) -> None:
    response = persona_api(org, "owner").get("/security")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mfa_required"] is False and body["invitation_domains"] == []
    assert body["api_key_max_lifetime_days"] is None


def test_update_changes_only_what_is_given(org: Org) -> None:
    api = persona_api(org, "owner")
    response = call(
        api,
        "PATCH",
        "/security",
        {"mfa_required": True, "invitation_domains": ["Example.com", "@acme.io"]},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mfa_required"] is True
    assert body["invitation_domains"] == ["example.com", "acme.io"]
    organization = Organization.objects.get(pk=org.organization.pk)
    assert organization.mfa_required and organization.mfa_required_since is not None
    event = last_event(org.organization, events.ORGANIZATION_SECURITY_UPDATED)
    assert set(event.data["after"]) == {"mfa_required", "invitation_domains"}

    capped = call(api, "PATCH", "/security", {"api_key_max_lifetime_days": 30}).json()
    assert capped["api_key_max_lifetime_days"] == 30 and capped["mfa_required"] is True
    lifted = call(api, "PATCH", "/security", {"api_key_max_lifetime_days": None}).json()
    assert lifted["api_key_max_lifetime_days"] is None


def test_disable_unused_after_days_is_read_bounded_and_turned_off_with_null(org: Org) -> None:
    api = persona_api(org, "owner")
    assert api.get("/security").json()["disable_unused_after_days"] is None
    for junk in (6, 3651):
        response = call(api, "PATCH", "/security", {"disable_unused_after_days": junk})
        assert response.status_code == 400, response.content
        assert "disable_unused_after_days" in response.json()["error"]["details"]
    assert Organization.objects.get(pk=org.organization.pk).disable_unused_after_days is None
    on = call(api, "PATCH", "/security", {"disable_unused_after_days": 90})
    assert on.status_code == 200 and on.json()["disable_unused_after_days"] == 90
    assert Organization.objects.get(pk=org.organization.pk).disable_unused_after_days == 90
    event = last_event(org.organization, events.ORGANIZATION_SECURITY_UPDATED)
    assert event.data == {
        "before": {"disable_unused_after_days": None},
        "after": {"disable_unused_after_days": 90},
    }
    kept = call(api, "PATCH", "/security", {"mfa_grace_days": 10}).json()
    assert kept["disable_unused_after_days"] == 90
    off = call(api, "PATCH", "/security", {"disable_unused_after_days": None}).json()
    assert off["disable_unused_after_days"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mfa_grace_days": 91}, "mfa_grace_days"),
        ({"login_failure_limit": 2}, "login_failure_limit"),
        ({"invitation_domains": ["not a domain"]}, "invitation_domains"),
        ({"session_max_age_hours": 0}, "session_max_age_hours"),
    ],
)
def test_the_consoles_validation_applies(org: Org, body: dict[str, Any], field: str) -> None:
    response = call(persona_api(org, "owner"), "PATCH", "/security", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    stored = Organization.objects.get(pk=org.organization.pk)
    assert getattr(stored, field) == getattr(org.organization, field)


OPERATIONS = [
    ("GET", None, "organization:security:read"),
    ("PATCH", {"mfa_grace_days": 10}, "organization:security:update"),
]


@pytest.mark.parametrize("who", [*PERSONAS, "outsider"])
@pytest.mark.parametrize(("method", "body", "action"), OPERATIONS)
def test_role_matrix(org: Org, who: str, method: str, body: Any, action: str) -> None:
    response = call(persona_api(org, who), method, "/security", body)
    if who == "outsider":
        # Its own organization's settings: this one's are never touched.
        assert response.status_code == 200
        assert Organization.objects.get(pk=org.organization.pk).mfa_grace_days != 10
        return
    if allowed(getattr(org, who), action):
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 403
        assert response.json()["error"]["details"]["permission"] == action
