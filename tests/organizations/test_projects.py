from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Project
from organizations.services.organizations import organization_bump_authz_version
from policies.models import Rule
from tests.conftest import Org, assert_access
from tests.factories import MembershipFactory, ProjectFactory, grant

pytestmark = pytest.mark.django_db


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def test_project_list_shows_projects_and_hides_create_from_read_only(org: Org) -> None:
    ProjectFactory(organization=org.organization, name="web")
    owner_page = org.client_for("owner").get(url("project_list", org)).content.decode()
    reader_page = org.client_for("readonly").get(url("project_list", org)).content.decode()
    assert "web" in owner_page and "web" in reader_page
    assert "Create project" in owner_page
    assert "Create project" not in reader_page


def test_project_list_runs_the_same_queries_for_2_or_200_projects(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("tech")
    ProjectFactory.create_batch(2, organization=org.organization)
    with django_assert_max_num_queries(12) as small:
        client.get(url("project_list", org))
    ProjectFactory.create_batch(198, organization=org.organization)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url("project_list", org))
    assert response.context["page"].paginator.count == 201


def test_create_project_with_a_plain_post(owner_client: Client, org: Org) -> None:
    response = owner_client.post(
        url("project_create", org), {"name": "analytics", "description": "BI"}
    )
    assert response.status_code == 302
    project = Project.objects.get(organization=org.organization, name="analytics")
    event = AuditEvent.objects.get(action="projects.project.created")
    assert event.target_id == str(project.pk)
    assert event.actor_user == org.owner.user


def test_create_project_with_htmx_returns_the_fragment(owner_client: Client, org: Org) -> None:
    response = owner_client.post(
        url("project_create", org), {"name": "analytics"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="projects">')
    assert "<html" not in body
    assert "analytics" in body


def test_project_names_are_unique_whatever_their_case(owner_client: Client, org: Org) -> None:
    ProjectFactory(organization=org.organization, name="web")
    response = owner_client.post(url("project_create", org), {"name": "WEB"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert Project.objects.filter(organization=org.organization).count() == 2


def test_the_same_project_name_may_exist_in_another_organization(
    owner_client: Client, org: Org
) -> None:
    ProjectFactory(name="web")
    response = owner_client.post(url("project_create", org), {"name": "web"})
    assert response.status_code == 302


def test_rename_inline_with_htmx(owner_client: Client, org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="old", description="")
    edit = owner_client.get(url("project_update", org, project.pk), headers={"HX-Request": "true"})
    assert "<form" in edit.content.decode() and "<html" not in edit.content.decode()
    response = owner_client.post(
        url("project_update", org, project.pk),
        {"name": "new", "description": "Renamed"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="project-{project.pk}">')
    project.refresh_from_db()
    assert (project.name, project.description) == ("new", "Renamed")
    event = AuditEvent.objects.get(action="projects.project.updated")
    assert event.data == {
        "before": {"name": "old", "description": ""},
        "after": {"name": "new", "description": "Renamed"},
    }


def test_rename_refuses_a_blank_name_and_changes_nothing(owner_client: Client, org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="keep")
    response = owner_client.post(url("project_update", org, project.pk), {"name": "  "})
    assert response.status_code == 400
    project.refresh_from_db()
    assert project.name == "keep"


def test_delete_needs_the_name_typed(owner_client: Client, org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="scratch")
    response = owner_client.post(url("project_delete", org, project.pk), {"confirm_name": "nope"})
    assert response.status_code == 400
    assert "Type the project name exactly" in response.content.decode()
    assert Project.objects.filter(pk=project.pk).exists()

    response = owner_client.post(
        url("project_delete", org, project.pk), {"confirm_name": "scratch"}
    )
    assert response.status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
    assert AuditEvent.objects.filter(action="projects.project.deleted").exists()


def test_the_default_project_cannot_be_deleted(owner_client: Client, org: Org) -> None:
    default = Project.objects.get(organization=org.organization, is_default=True)
    response = owner_client.post(
        url("project_delete", org, default.pk), {"confirm_name": default.name}
    )
    assert response.status_code == 400
    assert Project.objects.filter(pk=default.pk).exists()


def test_deleting_a_project_bumps_the_authorization_version(owner_client: Client, org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="gone")
    before = org.organization.authz_version
    owner_client.post(url("project_delete", org, project.pk), {"confirm_name": "gone"})
    org.organization.refresh_from_db()
    assert org.organization.authz_version == before + 1


def test_another_organizations_project_is_not_found(owner_client: Client, org: Org) -> None:
    foreign = ProjectFactory(name="secret")
    for name in ("project_detail", "project_update", "project_delete"):
        assert owner_client.get(url(name, org, foreign.pk)).status_code == 404
    response = owner_client.post(url("project_delete", org, foreign.pk), {"confirm_name": "secret"})
    assert response.status_code == 404
    assert Project.objects.filter(pk=foreign.pk).exists()


def test_project_access_by_role(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    assert_access(
        org,
        "get",
        url("project_list", org),
        # BillingAccess is invoices and the billing contact: no projects.
        {"owner": 200, "tech": 200, "billing": 403, "readonly": 200, "outsider": 404},
    )
    assert_access(
        org,
        "post",
        url("project_update", org, project.pk),
        {"billing": 403, "readonly": 403, "outsider": 404},
        name="hijacked",
    )
    project.refresh_from_db()
    assert project.name != "hijacked"
    assert_access(
        org,
        "post",
        url("project_create", org),
        {"billing": 403, "readonly": 403, "outsider": 404},
        name="intruder",
    )
    assert not Project.objects.filter(name="intruder").exists()
    assert_access(org, "post", url("project_create", org), {"tech": 302}, name="by-tech")


def test_forbidden_page_names_the_missing_permission(org: Org) -> None:
    response = org.client_for("readonly").post(url("project_create", org), {"name": "x"})
    assert response.status_code == 403
    assert "projects:projects:create" in response.content.decode()
    assert AuditEvent.objects.filter(action="authz.access.denied").exists()


# ------------------------------------------------------- the list shows what opens


def _lister(org: Org) -> Client:
    """A client of a member who may open the projects list, and nothing else yet."""
    member = MembershipFactory(organization=org.organization)
    grant(member, actions=["projects:projects:list"])
    client = Client()
    client.force_login(member.user)
    client.member = member  # type: ignore[attr-defined]
    return client


def _listed(client: Client, org: Org) -> set[str]:
    response = client.get(url("project_list", org))
    assert response.status_code == 200
    return {project.name for project in response.context["page"]}


def test_project_list_shows_only_the_projects_the_viewer_may_open(org: Org) -> None:
    web, db = (ProjectFactory(organization=org.organization, name=n) for n in ("web", "db"))
    client = _lister(org)
    grant(client.member, actions=["projects:projects:read"], projects=[web])
    assert _listed(client, org) == {"web"}
    body = client.get(url("project_list", org)).content.decode()
    assert url("project_detail", org, web.pk) in body
    assert url("project_detail", org, db.pk) not in body


def test_project_list_leaves_out_a_project_where_a_deny_takes_reading_back(org: Org) -> None:
    ProjectFactory(organization=org.organization, name="web")
    db = ProjectFactory(organization=org.organization, name="db")
    client = _lister(org)
    grant(client.member, actions=["projects:projects:read"], scope=Rule.Scope.ALL_PROJECTS)
    grant(client.member, effect=Rule.Effect.DENY, actions=["projects:*"], projects=[db])
    assert _listed(client, org) == {"default", "web"}


def test_project_list_decides_conditions_for_the_request(org: Org) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    client = _lister(org)
    # The test client's address is 127.0.0.1.
    condition = 'request.ip == "192.0.2.1"'
    grant(client.member, actions=["projects:projects:read"], projects=[web], condition=condition)
    assert _listed(client, org) == set()


def test_a_lister_who_may_open_no_project_is_told_why_the_list_is_empty(org: Org) -> None:
    body = _lister(org).get(url("project_list", org)).content.decode()
    assert "No project you may open" in body and "No projects yet" not in body


def test_project_list_runs_the_same_queries_for_2_or_200_chosen_projects(
    org: Org, django_assert_max_num_queries
) -> None:
    client = _lister(org)
    chosen = ProjectFactory.create_batch(2, organization=org.organization)
    grant(client.member, actions=["projects:projects:read"], projects=chosen)
    with django_assert_max_num_queries(12) as small:
        client.get(url("project_list", org))
    chosen = ProjectFactory.create_batch(198, organization=org.organization)
    grant(client.member, actions=["ProjectsReadOnly"], projects=chosen)
    organization_bump_authz_version(organization=org.organization)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url("project_list", org))
    assert response.context["page"].paginator.count == 200


def test_a_project_only_member_is_led_back_to_their_projects_not_the_list(org: Org) -> None:
    web = ProjectFactory(organization=org.organization, name="web")
    member = MembershipFactory(organization=org.organization)
    grant(member, actions=["ProjectsFullAccess"], projects=[web])
    client = Client()
    client.force_login(member.user)
    for name in ("project_detail", "project_delete"):
        body = client.get(url(name, org, web.pk)).content.decode()
        assert f'href="{url("project_list", org)}"' not in body
        assert f'href="{url("dashboard", org)}">Your projects</a>' in body
