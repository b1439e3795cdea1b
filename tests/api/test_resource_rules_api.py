"""Rules on chosen resources through the API (#14): the console's service behind
`resources` in RuleIn, returned in RuleOut."""

from __future__ import annotations

import uuid

import pytest

from policies.models import Policy
from tests.api.test_policies_api import Client, client_for, rule_body
from tests.conftest import Org
from tests.factories import PolicyFactory, ProjectFactory, ResourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(org: Org) -> Client:
    return client_for(org, "owner")


@pytest.fixture
def policy(org: Org) -> Policy:
    return PolicyFactory(organization=org.organization, name="Devs")


def test_a_rule_on_chosen_resources_round_trips(org: Org, owner: Client, policy: Policy) -> None:
    project = ProjectFactory(organization=org.organization)
    web = ResourceFactory(project=project, name="web")
    body = rule_body(actions=["compute:instances:read"], scope="resources", resources=[str(web.pk)])

    response = owner.post(f"/policies/{policy.pk}/rules", body)

    assert response.status_code == 201, response.json()
    (rule,) = response.json()["rules"]
    assert rule["scope"] == "resources"
    assert rule["resources"] == [
        {"id": str(web.pk), "type": "compute:instances", "name": "web", "project": str(project.pk)}
    ]
    assert list(policy.rules.get().resources.all()) == [web]

    rule_id = rule["id"]
    moved = rule_body(actions=["compute:instances:read"], scope="all_projects")
    response = owner.send("PUT", f"/policies/{policy.pk}/rules/{rule_id}", moved)
    assert response.status_code == 200
    assert response.json()["rules"][0]["resources"] == []
    assert not policy.rules.get().resources.exists()


def test_another_organizations_or_an_unknown_resource_is_404(
    org: Org, owner: Client, policy: Policy
) -> None:
    for resource_id in (ResourceFactory().pk, uuid.uuid4()):
        body = rule_body(
            actions=["compute:instances:read"], scope="resources", resources=[str(resource_id)]
        )
        assert owner.post(f"/policies/{policy.pk}/rules", body).status_code == 404
    assert not policy.rules.exists()


def test_actions_not_of_the_resources_type_are_a_400_naming_the_field(
    org: Org, owner: Client, policy: Policy
) -> None:
    zone = ResourceFactory(project=ProjectFactory(organization=org.organization), type="dns:zones")
    body = rule_body(
        actions=["compute:instances:read"], scope="resources", resources=[str(zone.pk)]
    )
    response = owner.post(f"/policies/{policy.pk}/rules", body)
    assert response.status_code in (400, 422)
    assert "resources" in str(response.json()) or "actions" in str(response.json())
    assert not policy.rules.exists()


def test_at_most_a_hundred_resources(org: Org, owner: Client, policy: Policy) -> None:
    ids = [str(uuid.uuid4()) for _ in range(101)]
    body = rule_body(actions=["compute:instances:read"], scope="resources", resources=ids)
    assert owner.post(f"/policies/{policy.pk}/rules", body).status_code == 422


def test_a_guardrail_denies_on_chosen_resources(org: Org, owner: Client) -> None:
    web = ResourceFactory(project=ProjectFactory(organization=org.organization))
    body = rule_body(
        effect="deny",
        actions=["compute:instances:delete"],
        scope="resources",
        resources=[str(web.pk)],
    )
    response = owner.post("/guardrails/rules", body)
    assert response.status_code == 201, response.json()
    assert response.json()["rules"][0]["resources"][0]["id"] == str(web.pk)
