"""`PUT /api/v1/users/{id}/tags` and `PUT /api/v1/applications/{id}/tags` (#14): the tags
policy conditions read as `principal.tags`, through the console's services (audited,
version bumped, owners' only by owners, within the caller's rights)."""

from __future__ import annotations

import pytest

from audit import events
from organizations.models import Application, Membership
from organizations.tags import TAGS_MAX
from policies.models import Policy, Rule
from tests.api.conftest import API, allow, call, key_token, last_event, persona_api, version
from tests.conftest import Org
from tests.factories import ApplicationFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

TEAM_RULE = 'resource.tags["team"] == principal.tags["team"]'


def manager_api(org: Org) -> tuple[Membership, API]:
    membership = MembershipFactory(organization=org.organization)
    iam = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    membership.policy_attachments.create(policy=iam, organization=org.organization)
    return membership, API(key_token(membership, membership))


# ----------------------------------------------------------------------------- users


def test_a_users_tags_are_set_and_read(org: Org) -> None:
    api = persona_api(org, "owner")
    assert api.get(f"/users/{org.tech.pk}").json()["tags"] == {}
    before = version(org.organization)

    response = call(api, "PUT", f"/users/{org.tech.pk}/tags", {"tags": {"team": "web"}})

    assert response.status_code == 200, response.content
    assert response.json()["tags"] == {"team": "web"}
    assert api.get(f"/users/{org.tech.pk}").json()["tags"] == {"team": "web"}
    listed = {u["id"]: u["tags"] for u in api.get("/users").json()["items"]}
    assert listed[str(org.tech.pk)] == {"team": "web"}
    assert version(org.organization) == before + 1
    event = last_event(org.organization, events.USER_UPDATED)
    assert event.target_id == str(org.tech.pk)
    assert event.data == {"before": {"tags": {}}, "after": {"tags": {"team": "web"}}}

    emptied = call(api, "PUT", f"/users/{org.tech.pk}/tags", {"tags": {}})
    assert emptied.status_code == 200 and emptied.json()["tags"] == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"tags": {"bad key": "x"}}, 400),  # the tag rules (organizations/tags.py)
        ({"tags": {"team": "a\nb"}}, 400),
        ({"tags": {"team": "v" * 257}}, 422),  # the schema, as for resources
        ({"tags": {"team": 1}}, 422),
        ({"tags": {f"k{n}": "v" for n in range(TAGS_MAX + 1)}}, 422),
        ({"tags": {"team": "web"}, "extra": 1}, 422),
        ({}, 422),
    ],
)
def test_invalid_tags_are_refused_in_the_one_error_shape(
    org: Org, body: dict[str, object], status: int
) -> None:
    response = call(persona_api(org, "owner"), "PUT", f"/users/{org.tech.pk}/tags", body)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if status == 400:
        assert "tags" in error["details"]
    org.tech.refresh_from_db()
    assert org.tech.tags == {}


def test_who_may_set_a_users_tags(org: Org) -> None:
    body = {"tags": {"team": "web"}}
    for who in ("tech", "billing", "readonly"):
        refused = call(persona_api(org, who), "PUT", f"/users/{org.owner.pk}/tags", body)
        assert refused.status_code == 403
        assert refused.json()["error"]["details"]["permission"] == "iam:users:update"
    outsider = call(persona_api(org, "outsider"), "PUT", f"/users/{org.tech.pk}/tags", body)
    assert outsider.status_code == 404
    foreign = MembershipFactory(organization=OrganizationFactory())
    other = call(persona_api(org, "owner"), "PUT", f"/users/{foreign.pk}/tags", body)
    assert other.status_code == 404
    foreign.refresh_from_db()
    assert foreign.tags == {}


def test_only_owners_retag_owners_and_nobody_retags_themselves(org: Org) -> None:
    iam_manager, api = manager_api(org)
    body = {"tags": {"team": "web"}}
    on_owner = call(api, "PUT", f"/users/{org.owner.pk}/tags", body)
    assert on_owner.status_code == 400
    assert "Only owners" in on_owner.json()["error"]["message"]
    on_self = call(api, "PUT", f"/users/{iam_manager.pk}/tags", body)
    assert on_self.status_code == 400
    assert call(api, "PUT", f"/users/{org.tech.pk}/tags", body).status_code == 200
    org.owner.refresh_from_db()
    iam_manager.refresh_from_db()
    assert org.owner.tags == {} and iam_manager.tags == {}


def test_retagging_is_within_the_callers_rights(org: Org) -> None:
    _, api = manager_api(org)
    allow(org.tech, "compute:instances:*", scope=Rule.Scope.ALL_PROJECTS, condition=TEAM_RULE)
    refused = call(api, "PUT", f"/users/{org.tech.pk}/tags", {"tags": {"team": "web"}})
    assert refused.status_code == 403, refused.content
    org.tech.refresh_from_db()
    assert org.tech.tags == {}
    owner = call(persona_api(org, "owner"), "PUT", f"/users/{org.tech.pk}/tags", {"tags": {}})
    assert owner.status_code == 200


# ---------------------------------------------------------------------- applications


def test_an_applications_tags_are_set_and_read(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    api = persona_api(org, "owner")
    assert api.get(f"/applications/{application.pk}").json()["tags"] == {}
    before = version(org.organization)

    response = call(api, "PUT", f"/applications/{application.pk}/tags", {"tags": {"team": "x"}})

    assert response.status_code == 200, response.content
    assert response.json()["tags"] == {"team": "x"}
    assert api.get(f"/applications/{application.pk}").json()["tags"] == {"team": "x"}
    assert api.get("/applications").json()["items"][0]["tags"] == {"team": "x"}
    assert version(org.organization) == before + 1
    event = last_event(org.organization, events.APPLICATION_UPDATED)
    assert event.data == {"before": {"tags": {}}, "after": {"tags": {"team": "x"}}}

    bad = call(api, "PUT", f"/applications/{application.pk}/tags", {"tags": {"bad key": "x"}})
    assert bad.status_code == 400 and "tags" in bad.json()["error"]["details"]


def test_who_may_set_an_applications_tags(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    path = f"/applications/{application.pk}/tags"
    body = {"tags": {"team": "x"}}
    for who in ("tech", "billing", "readonly"):
        refused = call(persona_api(org, who), "PUT", path, body)
        assert refused.status_code == 403
        assert refused.json()["error"]["details"]["permission"] == "iam:applications:update"
    assert call(persona_api(org, "outsider"), "PUT", path, body).status_code == 404
    foreign = ApplicationFactory(organization=OrganizationFactory())
    other = call(persona_api(org, "owner"), "PUT", f"/applications/{foreign.pk}/tags", body)
    assert other.status_code == 404
    assert Application.objects.get(pk=foreign.pk).tags == {}


def test_an_application_never_retags_itself(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    allow(application, "iam:applications:update", scope=Rule.Scope.ORGANIZATION)
    own = API(key_token(application, org.owner))
    response = call(own, "PUT", f"/applications/{application.pk}/tags", {"tags": {"team": "x"}})
    assert response.status_code == 400
    assert "its own tags" in response.json()["error"]["message"]
    other = ApplicationFactory(organization=org.organization)
    retagged = call(own, "PUT", f"/applications/{other.pk}/tags", {"tags": {"a": "b"}})
    assert retagged.status_code == 200
    application.refresh_from_db()
    assert application.tags == {}
