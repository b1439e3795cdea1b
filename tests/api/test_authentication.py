"""Key authentication: every refusal is a 401 in the one error shape; a live key acts as
its bearer; last use is written at most once a minute."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from organizations.models import APIKey, Membership, Organization
from organizations.services import api_keys as api_key_services
from tests.api.conftest import API, key_token
from tests.conftest import Org
from tests.factories import ApplicationFactory

pytestmark = pytest.mark.django_db


def assert_401(response: Any, code: str) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


def test_me_answers_the_key_its_organization_and_bearer(org: Org) -> None:
    token = key_token(org.tech, org.tech, description="laptop")
    response = API(token).get("/me")
    assert response.status_code == 200
    body = response.json()
    assert body["organization"] == {"id": str(org.organization.pk), "name": "Acme"}
    assert body["bearer"] == {
        "type": "user",
        "id": str(org.tech.user_id),
        "label": org.tech.user.email,
    }
    key = APIKey.objects.get()
    assert body["api_key"]["id"] == str(key.pk)
    assert body["api_key"]["access_key"] == key.access_key
    assert body["api_key"]["description"] == "laptop"


def test_an_application_key_acts_as_its_application(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization, name="ci")
    body = API(key_token(application, org.owner)).get("/me").json()
    assert body["bearer"] == {"type": "application", "id": str(application.pk), "label": "ci"}


def test_the_token_also_works_in_x_auth_token(org: Org) -> None:
    token = key_token(org.owner, org.owner)
    response = API().get("/me", **{"X-Auth-Token": token})
    assert response.status_code == 200


def test_no_credentials_is_401_authentication_required(org: Org) -> None:
    assert_401(API().get("/me"), "authentication_required")
    # Another scheme is not a key.
    assert_401(API().get("/me", Authorization="Basic dXNlcjpwYXNz"), "authentication_required")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "IAMKAAAAAAAAAAAAAAAA",  # an access key alone
        "IAMKAAAAAAAAAAAAAAAA.short",
        "not-a-key.factory-secret-not-for-production",
        "IAMK" + "A" * 16 + "." + "x" * 2000,
        "IAMKAAAAAAAAAAAAAAAA.secret with spaces in it",
    ],
)
def test_a_malformed_token_is_401_invalid_api_key(org: Org, token: str) -> None:
    assert_401(API(token).get("/me"), "invalid_api_key")
    assert_401(API().get("/me", **{"X-Auth-Token": token or " "}), "invalid_api_key")


def test_an_unknown_key_or_a_wrong_secret_is_401(org: Org) -> None:
    token = key_token(org.owner, org.owner)
    access_key, secret = token.split(".", 1)
    assert_401(API(f"IAMKNOSUCHKEY0000000.{secret}").get("/me"), "invalid_api_key")
    assert_401(API(f"{access_key}.{secret[:-1]}x").get("/me"), "invalid_api_key")
    # The secret alone (without its access key) is not a token.
    assert_401(API(secret).get("/me"), "invalid_api_key")


def test_an_expired_key_is_401(org: Org) -> None:
    token = key_token(org.owner, org.owner)
    APIKey.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert_401(API(token).get("/me"), "invalid_api_key")


def test_a_revoked_key_is_401(org: Org) -> None:
    token = key_token(org.owner, org.owner)
    api_key_services.api_key_delete(api_key=APIKey.objects.get(), actor=org.owner.user)
    assert_401(API(token).get("/me"), "invalid_api_key")


def test_a_suspended_bearer_is_401_and_works_again_when_reactivated(org: Org) -> None:
    token = key_token(org.tech, org.tech)
    Membership.objects.filter(pk=org.tech.pk).update(status=Membership.Status.SUSPENDED)
    assert_401(API(token).get("/me"), "invalid_api_key")
    Membership.objects.filter(pk=org.tech.pk).update(status=Membership.Status.ACTIVE)
    assert API(token).get("/me").status_code == 200


def test_a_deactivated_account_or_removed_bearer_is_401(org: Org) -> None:
    token = key_token(org.tech, org.tech)
    user = org.tech.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_401(API(token).get("/me"), "invalid_api_key")
    user.is_active = True
    user.save(update_fields=["is_active"])
    org.tech.delete()  # removed from the organization: the key goes with the membership
    assert_401(API(token).get("/me"), "invalid_api_key")


def test_the_organization_lifetime_cap_stops_an_older_key(org: Org) -> None:
    token = key_token(org.owner, org.owner)
    APIKey.objects.update(created_at=timezone.now() - datetime.timedelta(days=31))
    assert API(token).get("/me").status_code == 200
    Organization.objects.filter(pk=org.organization.pk).update(api_key_max_lifetime_days=30)
    assert_401(API(token).get("/me"), "invalid_api_key")


def test_a_signed_in_session_is_not_an_api_credential(org: Org) -> None:
    client = Client()
    client.force_login(org.owner.user)
    response = client.get("/api/v1/me")
    assert_401(response, "authentication_required")


def test_a_key_request_needs_no_csrf_token(org: Org, service_api: API) -> None:
    service_api.client = Client(enforce_csrf_checks=True)
    service_api.client.force_login(org.owner.user)  # a browser's cookie changes nothing
    body = {
        "questions": [
            {"principal": {"type": "user", "id": str(org.tech.user_id)}, "action": "iam:users:list"}
        ]
    }
    assert service_api.post("/authorize", body).status_code == 200


def test_last_use_is_written_at_most_once_a_minute(
    org: Org, django_assert_num_queries: Any
) -> None:
    token = key_token(org.owner, org.owner)
    api = API(token)
    assert api.get("/me", meta={"REMOTE_ADDR": "203.0.113.5"}).status_code == 200
    key = APIKey.objects.get()
    first = key.last_used_at
    assert first is not None and key.last_used_ip == "203.0.113.5"
    # Within the minute: the key is read, nothing is written.
    with django_assert_num_queries(1):
        assert api.get("/me").status_code == 200
    assert APIKey.objects.get().last_used_at == first
    APIKey.objects.update(last_used_at=first - datetime.timedelta(minutes=2))
    api.get("/me")
    assert APIKey.objects.get().last_used_at > first


def test_an_unknown_api_path_is_a_json_404(org: Org) -> None:
    response = API().get("/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
