from __future__ import annotations

import re
from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import reverse

from organizations.models import Membership
from policies import catalogue
from policies.models import Policy, Rule
from tests.conftest import Org, assert_access
from tests.factories import (
    ApplicationFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"iamtools:{name}", args=[org.organization.pk, *args])


def simulate(org: Org, who: str = "owner", htmx: bool = False, **params: Any) -> HttpResponse:
    headers = {"HX-Request": "true"} if htmx else {}
    return org.client_for(who).get(url("simulator", org), params, headers=headers)


def grant(membership: Membership, **rule: Any) -> Policy:
    """Attach to `membership` a new custom policy holding one rule."""
    policy = PolicyFactory(organization=membership.organization)
    RuleFactory(policy=policy, position=1, **rule)
    PolicyAttachmentFactory(policy=policy, membership=membership)
    return policy


# ------------------------------------------------------------------------- catalogue


def test_catalogue_lists_every_action_and_permission_set(org: Org) -> None:
    body = org.client_for("readonly").get(url("catalogue", org)).content.decode()
    for name, action in catalogue.ACTIONS.items():
        assert f"<code>{name}</code>" in body
        assert action.description.replace("'", "&#x27;") in body
    for name in catalogue.PERMISSION_SETS:
        assert f'id="set-{name}"' in body


def test_catalogue_runs_no_query_of_its_own(org: Org, django_assert_num_queries) -> None:
    client = org.client_for("owner")
    client.get(url("catalogue", org))  # warm the session and the listing cache
    # Session, user, the guard's membership (with the switcher's organizations).
    with django_assert_num_queries(3):
        client.get(url("catalogue", org))


def test_catalogue_access(org: Org) -> None:
    expected = {"owner": 200, "tech": 200, "readonly": 200, "billing": 403, "outsider": 404}
    assert_access(org, "get", url("catalogue", org), expected)


# ------------------------------------------------------------------------- simulator


def test_simulator_access(org: Org) -> None:
    expected = {"owner": 200, "tech": 200, "readonly": 200, "billing": 403, "outsider": 404}
    assert_access(org, "get", url("simulator", org), expected)


def test_simulator_form_prefills_the_principal_without_deciding(org: Org) -> None:
    response = simulate(org, principal=str(org.tech.pk))
    assert response.status_code == 200
    # A bare membership id (links from a user's page) selects that user.
    assert response.context["form"]["principal"].value() == f"user:{org.tech.pk}"
    body = response.content.decode()
    assert f'name="principal" value="user:{org.tech.pk}" checked' in body
    assert 'name="principal_q"' in body and 'id="search-pick"' in body
    assert "decision" not in response.context


def test_simulator_allows_tech_to_create_projects(org: Org) -> None:
    response = simulate(org, "tech", principal=org.tech.pk, action="projects:projects:create")
    body = response.content.decode()
    assert response.status_code == 200
    assert "ALLOW" in body
    assert "Allowed by rule 1 of policy TechAccess" in body
    assert 'role="status"' in body


def test_simulator_names_the_permission_billing_misses(org: Org) -> None:
    response = simulate(org, principal=org.billing.pk, action="projects:projects:create")
    body = response.content.decode()
    assert "DENY" in body
    assert response.context["decision"].reason == "implicit_deny"
    assert "Missing permission: <code>projects:projects:create</code>" in body


def test_simulator_shows_a_guardrail_decided(org: Org) -> None:
    guardrail = PolicyFactory(
        organization=org.organization, kind=Policy.Kind.GUARDRAIL, name="Office only"
    )
    RuleFactory(
        policy=guardrail,
        effect=Rule.Effect.DENY,
        actions=["projects:projects:create"],
        scope=Rule.Scope.ORGANIZATION,
    )
    response = simulate(org, principal=org.tech.pk, action="projects:projects:create")
    body = response.content.decode()
    assert "DENY" in body
    assert "Decided by a guardrail" in body
    assert "Office only" in body
    assert response.context["decision"].is_guardrail


def test_simulator_runs_ip_conditions(org: Org) -> None:
    grant(
        org.readonly,
        actions=["projects:projects:create"],
        condition='ip_in_range(request.ip, "10.0.0.0/8")',
    )
    params = {"principal": org.readonly.pk, "action": "projects:projects:create"}
    inside = simulate(org, ip="10.1.2.3", **params)
    outside = simulate(org, ip="192.0.2.1", **params)
    assert inside.context["decision"].allowed
    assert "ip_in_range" in inside.content.decode()
    assert not outside.context["decision"].allowed
    assert "only when its condition holds" in outside.content.decode()


def test_simulator_project_level_action_in_a_project(org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="web")
    response = simulate(
        org, principal=org.tech.pk, action="compute:instances:create", project=project.pk
    )
    assert response.context["decision"].allowed
    assert "Project web" in response.content.decode()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "billing:nope:read"}, "action"),
        ({"ip": "10.1.2.300"}, "ip"),
        ({"ip": "not-an-ip"}, "ip"),
        ({"time": "yesterday"}, "time"),
        ({"project": "not-a-uuid"}, "project"),
        ({"project": "00000000-0000-0000-0000-000000000000"}, "project"),
        ({"action": "compute:instances:create"}, "project"),  # project-level needs one
        ({"principal": "00000000-0000-0000-0000-000000000000"}, "principal"),
    ],
)
def test_simulator_refuses_bad_input_as_form_errors(
    org: Org, params: dict[str, str], field: str
) -> None:
    data = {"principal": str(org.tech.pk), "action": "projects:projects:create", **params}
    response = simulate(org, **data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert "Check the request" in response.content.decode()


def test_simulator_refuses_another_organizations_project_and_member(org: Org) -> None:
    other = MembershipFactory()
    project = ProjectFactory(organization=other.organization)
    response = simulate(
        org, principal=other.pk, action="compute:instances:create", project=project.pk
    )
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"principal", "project"}


def test_simulator_pickers_keep_the_chosen_ones_after_an_error(org: Org) -> None:
    """The principal and project are search pickers: a refused question shows the chosen
    ones again, and nothing else of the organization."""
    project = ProjectFactory(organization=org.organization, name="web")
    ProjectFactory(organization=org.organization, name="api")
    application = ApplicationFactory(organization=org.organization, name="deployer")
    params = {"principal": f"application:{application.pk}", "project": str(project.pk)}
    response = simulate(org, action="billing:nope:read", **params)
    assert response.status_code == 400 and set(response.context["form"].errors) == {"action"}
    body = response.content.decode()
    assert f'name="principal" value="application:{application.pk}" checked' in body
    assert f'name="project" value="{project.pk}" checked' in body
    assert 'name="project" value="" >' not in body
    assert str(org.billing.pk) not in body and "> api</label>" not in body
    # An application asks as itself.
    response = simulate(org, action="projects:projects:list", principal=params["principal"])
    assert response.status_code == 200 and response.context["subject"] == application


def test_simulator_refuses_another_organizations_application(org: Org) -> None:
    foreign = ApplicationFactory()
    for value in (f"application:{foreign.pk}", "application:junk", "robot:1", f"user:{foreign.pk}"):
        response = simulate(org, principal=value, action="projects:projects:list")
        assert response.status_code == 400, value
        assert "principal" in response.context["form"].errors


def test_no_script_principal_search_renders_matches(org: Org) -> None:
    ApplicationFactory(organization=org.organization, name="zeta-bot")
    response = simulate(org, principal_q="zeta")
    assert re.findall(r'name="principal" value="(application:[^"]+)"', response.content.decode())


def test_effective_permissions_project_picker(org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="web")
    foreign = ProjectFactory()
    page = url("effective_permissions", org, org.tech.pk)
    client = org.client_for("owner")
    body = client.get(page).content.decode()
    assert "/pick/permissions/users/projects/" in body and 'id="search-pick"' in body
    asked = {"resource": "", "resource_type": "compute:instances"}
    response = client.get(page, {**asked, "project": str(foreign.pk)})
    assert response.status_code == 400 and "project" in response.context["form"].errors
    response = client.get(page, {**asked, "project": str(project.pk)})
    assert response.status_code == 200
    assert f'name="project" value="{project.pk}" checked' in response.content.decode()


def test_simulator_refuses_a_project_for_an_organization_action(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    response = simulate(
        org, principal=org.tech.pk, action="projects:projects:create", project=project.pk
    )
    assert response.status_code == 400
    assert "leave the project empty" in response.content.decode()


def test_simulator_with_htmx_returns_only_the_result(org: Org) -> None:
    response = simulate(
        org, htmx=True, principal=org.tech.pk, action="projects:projects:create", mfa="on"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "<form" not in body
    assert "ALLOW" in body


def test_simulator_errors_with_htmx_still_swap(org: Org) -> None:
    response = simulate(org, htmx=True, principal=org.tech.pk, action="x", ip="nope")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert "is not an IPv4 or IPv6 address" in body


def test_simulator_owner_and_suspended_principals(org: Org) -> None:
    suspended = MembershipFactory(organization=org.organization, status=Membership.Status.SUSPENDED)
    owner = simulate(org, principal=org.owner.pk, action="billing:contact:update")
    gone = simulate(org, principal=suspended.pk, action="projects:projects:list")
    assert owner.context["decision"].reason == "owner"
    assert gone.context["decision"].reason == "inactive"
    assert "(suspended)" in gone.content.decode()


def test_simulator_reads_the_time_as_utc(org: Org) -> None:
    grant(
        org.readonly,
        actions=["projects:projects:create"],
        condition="request.time.getHours() == 9",
    )
    params = {"principal": org.readonly.pk, "action": "projects:projects:create"}
    assert simulate(org, time="2026-11-21T09:30", **params).context["decision"].allowed
    assert not simulate(org, time="2026-11-21T10:30", **params).context["decision"].allowed


# -------------------------------------------------------------- effective permissions


def test_effective_permissions_access(org: Org) -> None:
    expected = {"owner": 200, "tech": 200, "readonly": 200, "billing": 403, "outsider": 404}
    assert_access(org, "get", url("effective_permissions", org, org.tech.pk), expected)


def test_effective_permissions_of_another_organizations_member_is_404(org: Org) -> None:
    other = MembershipFactory()
    response = org.client_for("owner").get(url("effective_permissions", org, other.pk))
    assert response.status_code == 404


def test_effective_permissions_list_actions_scope_and_policy(org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="analytics")
    policy = grant(
        org.billing,
        actions=["StorageReadOnly"],
        scope=Rule.Scope.PROJECTS,
        condition="request.mfa",
    )
    policy.rules.get().projects.add(project)
    response = org.client_for("owner").get(url("effective_permissions", org, org.billing.pk))
    body = response.content.decode()
    assert "<code>billing:invoices:list</code>" in body
    assert "Rule 1 of policy BillingAccess" in body
    assert "Organization" in body
    assert "<code>storage:buckets:read</code>" in body
    assert "Project analytics" in body
    assert f"Rule 1 of policy {policy.name}" in body
    assert "Conditional" in body and "request.mfa" in body
    assert "compute:instances:create" not in body
    simulator_link = f"{url('simulator', org)}?principal=user:{org.billing.pk}"
    assert simulator_link in body


def test_effective_permissions_show_denies(org: Org) -> None:
    guardrail = PolicyFactory(
        organization=org.organization, kind=Policy.Kind.GUARDRAIL, name="No deletes"
    )
    RuleFactory(
        policy=guardrail,
        effect=Rule.Effect.DENY,
        actions=["projects:projects:delete"],
        scope=Rule.Scope.ALL_PROJECTS,
    )
    response = org.client_for("owner").get(url("effective_permissions", org, org.tech.pk))
    body = response.content.decode()
    assert "Guardrail rule 1 of policy No deletes" in body
    assert "<code>projects:projects:delete</code>" in body  # in the denies table only
    permissions = [p.action for _, rows in response.context["services"] for p in rows]
    assert "projects:projects:delete" not in permissions
    assert "projects:projects:update" in permissions


def test_effective_permissions_of_an_owner(org: Org) -> None:
    response = org.client_for("tech").get(url("effective_permissions", org, org.owner.pk))
    assert "Owners have full access" in response.content.decode()


def test_effective_permissions_of_a_suspended_member(org: Org) -> None:
    org.billing.status = Membership.Status.SUSPENDED
    org.billing.save()
    response = org.client_for("owner").get(url("effective_permissions", org, org.billing.pk))
    body = response.content.decode()
    assert "Suspended: no access" in body
    assert "billing:invoices:list" not in body


def test_effective_permissions_queries_do_not_grow_with_policies(
    org: Org, django_assert_max_num_queries
) -> None:
    def attach(count: int) -> None:
        for _ in range(count):
            project = ProjectFactory(organization=org.organization)
            policy = grant(org.tech, actions=["DNSReadOnly"], scope=Rule.Scope.PROJECTS)
            policy.rules.get().projects.add(project)

    client = org.client_for("owner")
    page = url("effective_permissions", org, org.tech.pk)
    attach(1)  # with TechAccess: 2 policies
    with django_assert_max_num_queries(10) as small:
        client.get(page)
    attach(28)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(page)
    assert response.status_code == 200
    # 29 project grants and TechAccess's grant on all projects.
    assert response.content.decode().count("<code>dns:zones:read</code>") == 30


def test_the_simulator_and_effective_permissions_cover_applications(org: Org) -> None:
    from tests.factories import (
        ApplicationFactory,
        GroupFactory,
        PolicyAttachmentFactory,
        PolicyFactory,
        RuleFactory,
    )

    app = ApplicationFactory(organization=org.organization, name="deployer")
    group = GroupFactory(organization=org.organization, name="Robots")
    group.applications.add(app)
    policy = PolicyFactory(organization=org.organization, name="invoices-for-robots")
    RuleFactory(policy=policy, actions=["billing:invoices:list"])
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    client = org.client_for("owner")
    response = simulate(org, principal=f"application:{app.pk}", action="billing:invoices:list")
    assert response.status_code == 200
    decision = response.context["decision"]
    assert decision.allowed
    assert decision.explanation == (
        "allowed by rule 1 of policy invoices-for-robots through group Robots"
    )
    foreign = ApplicationFactory()
    refused = simulate(org, principal=f"application:{foreign.pk}", action="billing:invoices:list")
    assert refused.status_code == 400
    page = client.get(
        reverse("iamtools:application_permissions", args=[org.organization.pk, app.pk])
    )
    assert page.status_code == 200
    assert "billing:invoices:list" in page.content.decode()
    assert "through group Robots" in page.content.decode()


def test_effective_permissions_of_an_application_without_policies_name_it(org: Org) -> None:
    from tests.factories import ApplicationFactory

    app = ApplicationFactory(organization=org.organization, name="idle")
    page = org.client_for("owner").get(
        reverse("iamtools:application_permissions", args=[org.organization.pk, app.pk])
    )
    assert page.status_code == 200
    assert "no policy attached to this application allows anything" in page.content.decode()
