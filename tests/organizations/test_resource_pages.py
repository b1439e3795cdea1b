"""Resources in the console: the project page's Resources section, a type's list, a
resource's page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from organizations.models import Membership, Project, Resource
from policies.models import Rule
from tests.conftest import Org
from tests.factories import MembershipFactory, ProjectFactory, ResourceFactory, grant

pytestmark = pytest.mark.django_db

INSTANCES, BUCKETS, ZONES = "compute:instances", "storage:buckets", "dns:zones"


def project_url(project: Project) -> str:
    return reverse(
        "organizations:project_detail",
        kwargs={"org_id": project.organization_id, "project_id": project.pk},
    )


def list_url(project: Project, resource_type: str = INSTANCES) -> str:
    return reverse(
        "organizations:resource_list",
        kwargs={
            "org_id": project.organization_id,
            "project_id": project.pk,
            "resource_type": resource_type,
        },
    )


def detail_url(resource: Resource, org_id: object = None) -> str:
    return reverse(
        "organizations:resource_detail",
        kwargs={"org_id": org_id or resource.organization_id, "resource_id": resource.pk},
    )


@pytest.fixture
def two_projects(org: Org) -> tuple[Project, Project]:
    a = ProjectFactory(organization=org.organization, name="Project A")
    b = ProjectFactory(organization=org.organization, name="Project B")
    ResourceFactory.create_batch(2, project=a, type=INSTANCES)
    ResourceFactory(project=a, type=BUCKETS, name="assets")
    ResourceFactory(project=b, type=INSTANCES, name="b-vm")
    return a, b


def compute_in(org: Org, project: Project, *actions: str) -> tuple[Membership, Client]:
    """A member who may open every project, and do only `actions` (default: every compute
    action) in `project`."""
    member = MembershipFactory(organization=org.organization)
    grant(member, scope=Rule.Scope.ALL_PROJECTS, actions=["projects:projects:read"])
    grant(member, projects=[project], actions=list(actions) or ["compute:instances:*"])
    client = Client()
    client.force_login(member.user)
    return member, client


# ------------------------------------------------------------------ the project page


def test_project_page_shows_each_type_with_its_count(
    org: Org, two_projects: tuple[Project, Project]
) -> None:
    a, _ = two_projects
    response = org.client_for("readonly").get(project_url(a))
    assert response.status_code == 200
    counts = {t.key: n for t, n in response.context["resources"]["types"]}
    assert counts == {INSTANCES: 2, BUCKETS: 1, ZONES: 0}
    body = response.content.decode()
    for resource_type in (INSTANCES, BUCKETS, ZONES):
        assert f'href="{list_url(a, resource_type)}"' in body


def test_a_member_allowed_only_compute_in_a_sees_only_instances_and_nothing_in_b(
    org: Org, two_projects: tuple[Project, Project]
) -> None:
    a, b = two_projects
    _, client = compute_in(org, a)
    page_a = client.get(project_url(a))
    assert [t.key for t, _ in page_a.context["resources"]["types"]] == [INSTANCES]
    body = page_a.content.decode()
    assert "Instances" in body and f'href="{list_url(a)}"' in body
    assert "Buckets" not in body and list_url(a, BUCKETS) not in body
    page_b = client.get(project_url(b))
    assert page_b.context["resources"]["types"] == []
    assert "/resources/" not in page_b.content.decode()
    # The lists agree with the page: only A's instances open.
    assert client.get(list_url(a)).status_code == 200
    assert client.get(list_url(a, BUCKETS)).status_code == 403
    assert client.get(list_url(b)).status_code == 403


def test_empty_project_says_services_register_resources_through_the_api(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    body = org.client_for("owner").get(project_url(project)).content.decode()
    assert "No resources yet" in body
    assert 'href="/api/v1/docs"' in body


def test_project_page_costs_the_same_queries_for_3_or_60_resources(
    org: Org, django_assert_max_num_queries
) -> None:
    project = ProjectFactory(organization=org.organization)
    client = org.client_for("tech")
    for resource_type in (INSTANCES, BUCKETS, ZONES):
        ResourceFactory(project=project, type=resource_type)
    with django_assert_max_num_queries(20) as small:
        assert client.get(project_url(project)).status_code == 200
    for resource_type in (INSTANCES, BUCKETS, ZONES):
        ResourceFactory.create_batch(19, project=project, type=resource_type)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(project_url(project))
    assert sum(n for _, n in response.context["resources"]["types"]) == 60


# -------------------------------------------------------------------- a type's list


def test_list_shows_the_types_resources_with_tags_and_links(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    vm = ResourceFactory(project=project, name="web-1", tags={"team": "web"})
    ResourceFactory(project=project, type=BUCKETS, name="a-bucket")
    ResourceFactory(project=ProjectFactory(organization=org.organization), name="elsewhere")
    body = org.client_for("readonly").get(list_url(project)).content.decode()
    assert f'href="{detail_url(vm)}"' in body
    assert '<span class="badge">team=web</span>' in body
    assert "a-bucket" not in body and "elsewhere" not in body


def test_list_links_to_a_resource_only_when_the_viewer_may_read_it(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    vm = ResourceFactory(project=project, name="web-1")
    _, client = compute_in(org, project, "compute:instances:list")
    body = client.get(list_url(project)).content.decode()
    assert "web-1" in body
    assert detail_url(vm) not in body
    assert client.get(detail_url(vm)).status_code == 403


def test_a_read_granted_on_one_resource_links_that_row_only(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    web = ResourceFactory(project=project, name="web-1")
    db = ResourceFactory(project=project, name="db-1")
    member, client = compute_in(org, project, "compute:instances:list")
    grant(member, resources=[web], actions=["compute:instances:read"])
    body = client.get(list_url(project)).content.decode()
    assert f'href="{detail_url(web)}"' in body and detail_url(db) not in body
    page = client.get(detail_url(web))
    assert page.status_code == 200
    allowed = {d.action: d.allowed for d in page.context["decisions"]}
    assert allowed["compute:instances:read"] is True
    assert allowed["compute:instances:delete"] is False
    assert client.get(detail_url(db)).status_code == 403


def test_a_tag_condition_decides_each_row(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    web = ResourceFactory(project=project, name="web-1", tags={"team": "web"})
    db = ResourceFactory(project=project, name="db-1", tags={"team": "data"})
    member, client = compute_in(org, project, "compute:instances:list")
    Membership.objects.filter(pk=member.pk).update(tags={"team": "web"})
    grant(
        member,
        projects=[project],
        actions=["compute:instances:read"],
        condition='resource.tags["team"] == principal.tags["team"]',
    )
    body = client.get(list_url(project)).content.decode()
    assert f'href="{detail_url(web)}"' in body and detail_url(db) not in body


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("WEB", {"web-1", "web-2"}),  # name, any case
        ("team=data", {"db-1"}),  # a tag's exact value
        ("team", {"web-1", "db-1"}),  # a tag key present
        ("nothing", set()),
    ],
)
def test_search_by_name_or_tag(org: Org, q: str, expected: set[str]) -> None:
    project = ProjectFactory(organization=org.organization)
    ResourceFactory(project=project, name="web-1", tags={"team": "web"})
    ResourceFactory(project=project, name="web-2")
    ResourceFactory(project=project, name="db-1", tags={"team": "data"})
    response = org.client_for("owner").get(list_url(project), {"q": q})
    assert {r.name for r in response.context["page"]} == expected
    if not expected:
        assert f"Nothing matches “{q}”" in response.content.decode()


def test_search_as_you_type_returns_only_the_results(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    ResourceFactory(project=project, name="web-1")
    response = org.client_for("owner").get(
        list_url(project),
        {"q": "web"},
        headers={"HX-Request": "true", "HX-Target": "resource-results"},
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="resource-results">')
    assert "web-1" in body and "<html" not in body
    # The page itself carries the search form for HTMX and a plain GET fallback.
    page = org.client_for("owner").get(list_url(project)).content.decode()
    assert 'hx-target="#resource-results"' in page and 'method="get"' in page


def test_list_is_paginated_by_25(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    ResourceFactory.create_batch(30, project=project)
    client = org.client_for("owner")
    first = client.get(list_url(project))
    assert len(first.context["page"]) == 25
    assert first.context["page"].paginator.count == 30
    assert len(client.get(list_url(project), {"page": 2}).context["page"]) == 5


def test_empty_list_says_services_register_through_the_api(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    body = org.client_for("owner").get(list_url(project, ZONES)).content.decode()
    assert "None yet: platform services register DNS zones" in body
    assert 'href="/api/v1/docs"' in body


def test_list_costs_the_same_queries_for_3_or_60_resources(
    org: Org, django_assert_max_num_queries
) -> None:
    project = ProjectFactory(organization=org.organization)
    client = org.client_for("readonly")
    ResourceFactory.create_batch(3, project=project, tags={"team": "web"})
    with django_assert_max_num_queries(20) as small:
        assert client.get(list_url(project)).status_code == 200
    ResourceFactory.create_batch(57, project=project, tags={"team": "web"})
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(list_url(project), {"page": 2})
    assert response.context["page"].paginator.count == 60


def test_another_organizations_project_is_404(org: Org) -> None:
    foreign = ProjectFactory()
    ResourceFactory(project=foreign)
    kwargs = {"org_id": org.organization.pk, "project_id": foreign.pk}
    url = reverse("organizations:resource_list", kwargs={**kwargs, "resource_type": INSTANCES})
    assert org.client_for("owner").get(url).status_code == 404


# ----------------------------------------------------------------- a resource's page


def test_resource_page_shows_details_tags_and_decisions(org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="Project A")
    vm = ResourceFactory(project=project, name="web-1", tags={"team": "web", "env": "prod"})
    response = org.client_for("readonly").get(detail_url(vm))
    assert response.status_code == 200
    body = response.content.decode()
    assert "web-1" in body and str(vm.pk) in body and "Instance" in body
    assert f'href="{project_url(project)}"' in body
    assert "<td><code>env</code></td><td>prod</td>" in body
    decisions = {d.action: d for d in response.context["decisions"]}
    verbs = ("list", "read", "create", "update", "delete")
    assert list(decisions) == [f"{INSTANCES}:{verb}" for verb in verbs]
    assert decisions[f"{INSTANCES}:read"].allowed
    assert not decisions[f"{INSTANCES}:delete"].allowed
    # Each decision is shown with the evaluator's explanation.
    for decision in decisions.values():
        assert escape(decision.explanation) in body


def test_resource_page_is_refused_without_its_types_read(org: Org) -> None:
    vm = ResourceFactory(project=ProjectFactory(organization=org.organization))
    response = org.client_for("billing").get(detail_url(vm))
    assert response.status_code == 403
    assert "compute:instances:read" in response.content.decode()


def test_resource_read_is_decided_in_its_project(org: Org) -> None:
    a = ProjectFactory(organization=org.organization)
    b = ProjectFactory(organization=org.organization)
    in_a, in_b = ResourceFactory(project=a), ResourceFactory(project=b)
    _, client = compute_in(org, a)
    assert client.get(detail_url(in_a)).status_code == 200
    assert client.get(detail_url(in_b)).status_code == 403


def test_another_organizations_resource_is_404(org: Org) -> None:
    foreign = ResourceFactory(project=ProjectFactory())
    assert org.client_for("owner").get(detail_url(foreign, org.organization.pk)).status_code == 404
    # An outsider of the resource's own organization gets 404 too.
    assert org.client_for("outsider").get(detail_url(foreign)).status_code == 404
