"""The condition tester: only rule editors may run it, a limited number of times."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from organizations.models import Membership
from policies.views import tools as tool_views
from tests.conftest import Org, assert_access
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _url(org: Org) -> str:
    return reverse("policies:condition_test", args=[org.organization.pk])


def test_the_condition_tester_needs_policy_write_permission(org: Org) -> None:
    # ReadOnlyAccess and TechAccess read policies: neither may run conditions.
    expected = {"readonly": 403, "tech": 403, "billing": 403, "owner": 200, "outsider": 404}
    assert_access(org, "post", _url(org), expected, condition="request.mfa")


def test_the_condition_tester_is_rate_limited_per_user(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tool_views, "CONDITION_TESTS_PER_MINUTE", 2)
    owner = org.client_for("owner")
    data = {"condition": "request.mfa"}
    assert [owner.post(_url(org), data).status_code for _ in range(2)] == [200, 200]
    refused = owner.post(_url(org), data)
    assert (refused.status_code, refused["Retry-After"]) == (429, "60")
    assert "Too many condition tests: at most 2 a minute" in refused.content.decode()
    fragment = owner.post(_url(org), data, headers=HTMX)  # htmx swaps only 2xx answers
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<html" not in body and "Too many condition tests" in body
    second = Client()
    second.force_login(MembershipFactory(organization=org.organization, is_owner=True).user)
    assert second.post(_url(org), data).status_code == 200  # the limit is per user


def test_the_condition_tester_refuses_the_condition_bomb_without_running_it(
    org: Org, owner_client: Client
) -> None:
    bomb = 'request.user_agent.startsWith("boom") && ' + "[1, 2, 3].exists(a, " * 9 + "true"
    bomb += ")" * 9
    start = time.perf_counter()
    response = owner_client.post(
        _url(org), {"condition": bomb, "test_user_agent": "boom"}, headers=HTMX
    )
    assert time.perf_counter() - start < 1
    body = response.content.decode()
    assert "The condition is refused" in body and "cannot nest exists" in body


def test_tag_conditions_are_tested_with_your_tags_or_typed_ones(org: Org) -> None:
    Membership.objects.filter(pk=org.owner.pk).update(tags={"team": "web"})
    owner = org.client_for("owner")
    condition = 'resource.tags["team"] == principal.tags["team"]'

    def results(**typed: str) -> list[tuple[str, dict[str, object]]]:
        response = owner.post(_url(org), {"condition": condition, **typed})
        assert response.status_code == 200
        return response.context["results"]

    ((_, current),) = results()
    assert "error" in current  # no resource in your own request: fails closed
    (_, _), (_, typed) = results(
        test_resource_type="compute:instances", test_resource_tags='{"team": "web"}'
    )
    assert typed["value"] is True and typed["principal_tags"] == [("team", "web")]
    (_, _), (_, other) = results(
        test_resource_type="compute:instances",
        test_resource_tags='{"team": "web"}',
        test_principal_tags='{"team": "data"}',
    )
    assert other["value"] is False


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ({"test_principal_tags": "team=web"}, "a JSON object"),
        ({"test_principal_tags": '{"bad key": "x"}'}, "Tag key"),
        ({"test_resource_tags": '{"team": "web"}'}, "Choose the resource&#x27;s type"),
    ],
)
def test_malformed_test_tags_are_form_errors(org: Org, typed: dict[str, str], message: str) -> None:
    response = org.client_for("owner").post(_url(org), {"condition": "request.mfa", **typed})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["results"] == []
