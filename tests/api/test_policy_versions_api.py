"""Policy versions through the API: list, read with the changes, restore behind
`If-Match`, the delegation ceiling and the permission."""

from __future__ import annotations

import pytest

from audit import events
from audit.models import AuditEvent
from organizations.models import Organization
from policies.models import Policy, PolicyAttachment
from policies.services import policies as policy_services
from policies.services import rules as rule_services
from tests.api.conftest import key_token
from tests.api.test_policies_api import Client, client_for
from tests.conftest import Org
from tests.factories import MembershipFactory, PolicyFactory, PolicyVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(org: Org) -> Client:
    return client_for(org, "owner")


@pytest.fixture
def policy(org: Org) -> Policy:
    """Version 1 created, 2 with `iam:users:list`, 3 with it changed to `iam:groups:list`."""
    actor = org.owner.user
    policy = policy_services.policy_create(organization=org.organization, name="Devs", actor=actor)
    rule_services.rule_add(
        policy=policy,
        effect="allow",
        actions=["iam:users:list"],
        scope="organization",
        actor=actor,
    )
    rule_services.rule_update(
        rule=policy.rules.get(),
        effect="allow",
        actions=["iam:groups:list"],
        scope="organization",
        actor=actor,
    )
    return policy


def authz_version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def test_list_and_read_versions(owner: Client, policy: Policy) -> None:
    body = owner.get(f"/policies/{policy.pk}/versions?limit=2").json()
    assert [(v["number"], v["change"], v["current"]) for v in body["items"]] == [
        (1, "created", False),
        (2, "rule 1 added", False),
    ]
    rest = owner.get(f"/policies/{policy.pk}/versions?cursor={body['next']}").json()
    assert [(v["number"], v["current"]) for v in rest["items"]] == [(3, True)]
    assert rest["next"] is None

    version = owner.get(f"/policies/{policy.pk}/versions/3").json()
    assert version["previous"] == 2 and version["change"] == "rule 1 edited"
    assert [rule["actions"] for rule in version["rules"]] == [["iam:groups:list"]]
    assert version["changes"] == [{"position": 1, "status": "changed", "fields": ["actions"]}]
    assert owner.get(f"/policies/{policy.pk}/versions/9").status_code == 404
    assert owner.get(f"/policies/{policy.pk}/versions/0").status_code == 422


def test_restore_respects_if_match_and_answers_the_policy(
    org: Org, owner: Client, policy: Policy
) -> None:
    etag = owner.get(f"/policies/{policy.pk}")["ETag"]
    rule_services.rule_remove(rule=policy.rules.get(), actor=org.owner.user)  # version 4
    restore = f"/policies/{policy.pk}/versions/2/restore"
    assert owner.send("POST", restore, **{"If-Match": etag}).status_code == 409
    assert policy.rules.count() == 0
    before = authz_version(org)
    etag = owner.get(f"/policies/{policy.pk}")["ETag"]

    response = owner.send("POST", restore, **{"If-Match": etag})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["restored_version"], body["dropped"]) == (5, 2, [])
    assert [rule["actions"] for rule in body["rules"]] == [["iam:users:list"]]
    assert response["ETag"] == body["etag"] != etag
    assert authz_version(org) == before + 1
    event = AuditEvent.objects.filter(action=events.POLICY_RESTORED.name).get()
    assert event.actor_type == AuditEvent.ActorType.API_KEY
    assert (event.data["from_version"], event.data["to_version"]) == (4, 5)


def test_restore_needs_the_permission_and_stays_within_the_ceiling(
    org: Org, policy: Policy
) -> None:
    readonly = client_for(org, "readonly")
    assert readonly.get(f"/policies/{policy.pk}/versions").status_code == 200
    assert readonly.send("POST", f"/policies/{policy.pk}/versions/2/restore").status_code == 403
    # An IAM manager may not restore a version granting what they do not hold.
    iam = MembershipFactory(organization=org.organization)
    manager = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    iam.policy_attachments.create(policy=manager, organization=org.organization)
    rule_services.rule_update(
        rule=policy.rules.get(),
        effect="allow",
        actions=["billing:*"],
        scope="organization",
        actor=org.owner.user,
    )  # version 4
    rule_services.rule_update(
        rule=policy.rules.get(),
        effect="allow",
        actions=["iam:users:list"],
        scope="organization",
        actor=org.owner.user,
    )  # version 5
    PolicyAttachment.objects.create(policy=policy, membership=iam, organization=org.organization)
    client = Client(key_token(iam, iam))
    response = client.send("POST", f"/policies/{policy.pk}/versions/4/restore")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "delegation_refused"
    assert policy.versions.count() == 5
    assert list(policy.rules.values_list("actions", flat=True)) == [["iam:users:list"]]


def test_another_organizations_policy_is_404(org: Org, owner: Client) -> None:
    elsewhere = PolicyFactory(name="Elsewhere")
    PolicyVersionFactory(policy=elsewhere, number=1)
    assert owner.get(f"/policies/{elsewhere.pk}/versions").status_code == 404
    assert owner.get(f"/policies/{elsewhere.pk}/versions/1").status_code == 404
    assert owner.send("POST", f"/policies/{elsewhere.pk}/versions/1/restore").status_code == 404
    assert elsewhere.versions.count() == 1


def test_managed_policies_have_no_versions(owner: Client) -> None:
    managed = Policy.objects.get(kind=Policy.Kind.MANAGED, name="ReadOnlyAccess")
    assert owner.get(f"/policies/{managed.pk}/versions").json()["items"] == []
