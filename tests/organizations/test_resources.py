"""Resources in projects (#14): the services' validation, audit events and authorization
version, and the selectors' lookups and search."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.http import Http404

from audit import events
from audit.models import AuditEvent
from organizations.models import Organization, Resource
from organizations.selectors.resources import resource_for, resources_of, type_counts
from organizations.services.resources import resource_create, resource_delete, resource_update
from tests.conftest import Org
from tests.factories import PolicyFactory, ProjectFactory, ResourceFactory, RuleFactory

pytestmark = pytest.mark.django_db


def _version(organization: Organization) -> int:
    organization.refresh_from_db()
    return organization.authz_version


def _event(organization: Organization, action: events.EventType) -> AuditEvent:
    return AuditEvent.objects.filter(organization=organization, action=action.name).latest("id")


def _create(org: Org, **values: object) -> Resource:
    project = ProjectFactory(organization=org.organization)
    fields = {"type": "compute:instances", "name": "web-1", "tags": {"team": "web"}, **values}
    return resource_create(project=project, actor=org.owner.user, **fields)  # type: ignore[arg-type]


def test_create_stores_the_resource_and_audits_it_without_a_bump(org: Org) -> None:
    before = _version(org.organization)
    resource = _create(org, name="  web-1  ")
    assert resource.name == "web-1" and resource.organization == org.organization
    event = _event(org.organization, events.RESOURCE_CREATED)
    assert event.target_id == str(resource.pk)
    assert event.data["after"]["tags"] == {"team": "web"}
    assert _version(org.organization) == before


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"type": "compute:servers"}, "type", "Unknown resource type"),
        ({"name": "   "}, "name", "Enter a resource name."),
        ({"name": "x" * 129}, "name", "at most 128 characters"),
        ({"name": "web\n1"}, "name", "U+000A"),
        ({"tags": ["team"]}, "tags", "object of key -> value strings"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "tags", "at most 50 tags"),
        ({"tags": {"bad key": "v"}}, "tags", 'Tag key "bad key"'),
        ({"tags": {"k" * 65: "v"}}, "tags", "1 to 64"),
        ({"tags": {"team": 3}}, "tags", 'Tag "team" needs a string value'),
        ({"tags": {"team": "v" * 257}}, "tags", "at most 256 characters"),
        ({"tags": {"team": "a\x00b"}}, "tags", "on one line"),
    ],
)
def test_create_refuses_invalid_values_naming_the_field(
    org: Org, values: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _create(org, **values)
    assert message in " ".join(refused.value.message_dict[field])
    assert not Resource.objects.exists()


def test_the_widest_valid_tags_are_accepted(org: Org) -> None:
    tags = {f"k{i}": "v" * 256 for i in range(49)} | {"a.b:c/d+e=f@g_h-i": ""}
    assert _create(org, tags=tags, name="x" * 128).tags == tags


def test_update_renames_and_retags_with_a_diff_and_a_bump(org: Org) -> None:
    resource = _create(org, tags={"team": "web", "env": "prod"})
    before = _version(org.organization)
    resource_update(resource=resource, tags={"team": "data"}, actor=org.owner.user)
    resource.refresh_from_db()
    assert resource.name == "web-1" and resource.tags == {"team": "data"}
    event = _event(org.organization, events.RESOURCE_UPDATED)
    assert event.data == {
        "before": {"tags": {"team": "web", "env": "prod"}},
        "after": {"tags": {"team": "data"}},
    }
    assert _version(org.organization) == before + 1

    resource_update(resource=resource, name="web-2", actor=org.owner.user)
    assert _event(org.organization, events.RESOURCE_UPDATED).data == {
        "before": {"name": "web-1"},
        "after": {"name": "web-2"},
    }
    assert _version(org.organization) == before + 2


def test_an_update_changing_nothing_records_nothing(org: Org) -> None:
    resource = _create(org)
    before = _version(org.organization)
    resource_update(resource=resource, name="web-1", tags={"team": "web"}, actor=org.owner.user)
    assert not AuditEvent.objects.filter(action=events.RESOURCE_UPDATED.name).exists()
    assert _version(org.organization) == before


def test_update_validates_like_create(org: Org) -> None:
    resource = _create(org)
    with pytest.raises(ValidationError) as refused:
        resource_update(resource=resource, tags={"": "x"}, actor=org.owner.user)
    assert "tags" in refused.value.message_dict
    resource.refresh_from_db()
    assert resource.tags == {"team": "web"}


def test_delete_audits_and_bumps(org: Org) -> None:
    resource = _create(org)
    pk, before = resource.pk, _version(org.organization)
    resource_delete(resource=resource, actor=org.owner.user)
    assert not Resource.objects.filter(pk=pk).exists()
    event = _event(org.organization, events.RESOURCE_DELETED)
    assert event.target_id == str(pk)
    assert event.data["before"]["name"] == "web-1"
    assert _version(org.organization) == before + 1


def test_delete_takes_the_resource_out_of_its_rules_in_one_bump(org: Org) -> None:
    resource = _create(org)
    policy = PolicyFactory(organization=org.organization, name="web-readers")
    rule = RuleFactory(
        policy=policy, position=1, actions=["compute:instances:read"], scope="resources"
    )
    rule.resources.set([resource])
    before = _version(org.organization)
    resource_delete(resource=resource, actor=org.owner.user)
    assert not rule.resources.exists()
    event = _event(org.organization, events.POLICY_RESOURCE_REMOVED)
    assert event.target_id == str(policy.pk)
    assert event.data["resource"]["name"] == "web-1"
    assert event.data["rules"] == [{"rule": str(rule.pk), "position": 1, "resources_left": 0}]
    assert "match nothing" in event.data["note"]
    assert _version(org.organization) == before + 1


def test_resource_for_is_404_for_another_organization(org: Org) -> None:
    ours = ResourceFactory(project__organization=org.organization)
    theirs = ResourceFactory()
    assert resource_for(organization=org.organization, resource_id=ours.pk) == ours
    for missing in (theirs.pk, "not-a-uuid"):
        with pytest.raises(Http404):
            resource_for(organization=org.organization, resource_id=missing)


def test_resources_of_filters_by_type_and_searches_names_and_tags(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    web = ResourceFactory(project=project, name="Web-1", tags={"team": "web", "env": "prod"})
    etl = ResourceFactory(project=project, name="etl-1", tags={"team": "data"})
    bucket = ResourceFactory(project=project, type="storage:buckets", name="assets", tags={})
    ResourceFactory(name="web-elsewhere", tags={"team": "web"})  # another project

    def names(**kwargs: object) -> set[str]:
        return {r.name for r in resources_of(project, **kwargs)}  # type: ignore[arg-type]

    assert names() == {web.name, etl.name, bucket.name}
    assert names(type="compute:instances") == {web.name, etl.name}
    assert names(search="web") == {web.name}  # a name, ignoring case
    assert names(search="team=web") == {web.name}
    assert names(search="team=we") == set()  # a tag's value matches exactly
    assert names(search="env") == {web.name}  # the tag is set
    assert names(search="team", type="compute:instances") == {web.name, etl.name}
    assert names(search="a\x00b") == set()


def test_type_counts_in_one_query(org: Org, django_assert_num_queries) -> None:
    project = ProjectFactory(organization=org.organization)
    ResourceFactory.create_batch(3, project=project)
    ResourceFactory(project=project, type="dns:zones")
    with django_assert_num_queries(1):
        counts = type_counts(project)
    assert counts == {"compute:instances": 3, "dns:zones": 1}


def test_the_demo_seeds_tagged_resources_of_each_type_idempotently() -> None:
    call_command("seed_demo", stdout=StringIO())
    count = Resource.objects.count()
    call_command("seed_demo", stdout=StringIO())
    assert Resource.objects.count() == count
    assert {r.type for r in Resource.objects.all()} == {
        "compute:instances",
        "storage:buckets",
        "dns:zones",
    }
    assert Resource.objects.filter(tags__has_key="team").count() == count
