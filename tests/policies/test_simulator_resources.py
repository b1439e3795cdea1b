"""The simulator and effective permissions in the console, asked about a resource:
registered (picked by searching) or not yet (type, project and tag rows)."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import reverse

from organizations.models import Membership, Project, Resource
from policies.models import Policy, Rule
from policies.selectors.policies import PICKER_MATCHES
from tests.conftest import Org
from tests.factories import (
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db

TEAM = 'resource.tags["team"] == principal.tags["team"]'


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"iamtools:{name}", args=[org.organization.pk, *args])


def simulate(org: Org, who: str = "owner", **params: Any) -> HttpResponse:
    return org.client_for(who).get(url("simulator", org), params)


def grant(membership: Membership, *, resources: list[Resource] = (), **rule: Any) -> Policy:
    policy = PolicyFactory(organization=membership.organization)
    created = RuleFactory(policy=policy, position=1, **rule)
    created.resources.set(resources)
    PolicyAttachmentFactory(policy=policy, membership=membership)
    return policy


def tag_rows(tags: dict[str, str]) -> dict[str, str]:
    """The tag rows as the form posts them (organizations.forms.tags)."""
    rows = {"tags-TOTAL_FORMS": str(len(tags) + 1), "tags-INITIAL_FORMS": "0"}
    for index, (key, value) in enumerate(tags.items()):
        rows[f"tags-{index}-key"], rows[f"tags-{index}-value"] = key, value
    return rows


@pytest.fixture
def projects(org: Org) -> tuple[Project, Project]:
    return (
        ProjectFactory(organization=org.organization, name="project-a"),
        ProjectFactory(organization=org.organization, name="project-b"),
    )


@pytest.fixture
def team_web(org: Org) -> Membership:
    """billing, tagged team=web, with the team policy (allow on instances of their team)."""
    org.billing.tags = {"team": "web"}
    org.billing.save()
    grant(
        org.billing,
        actions=["compute:instances:*"],
        scope=Rule.Scope.ALL_PROJECTS,
        condition=TEAM,
    )
    return org.billing


# ------------------------------------------------------------------------- simulator


def test_a_registered_resource_is_decided_with_its_tags(
    org: Org, projects: tuple[Project, Project], team_web: Membership
) -> None:
    web = ResourceFactory(project=projects[1], name="web-1", tags={"team": "web"})
    data = ResourceFactory(project=projects[1], name="etl-1", tags={"team": "data"})
    principal = f"user:{team_web.pk}"
    response = simulate(org, principal=principal, action="compute:instances:read", resource=web.pk)
    assert response.status_code == 200
    decision = response.context["decision"]
    assert decision.allowed and decision.project_id == str(projects[1].pk)
    body = response.content.decode()
    # Which rule matched, and through which tag.
    assert "resource.tags[&quot;team&quot;] is &quot;web&quot;" in body
    assert "web-1" in body and "Project project-b" in body
    denied = simulate(org, principal=principal, action="compute:instances:read", resource=data.pk)
    decision = denied.context["decision"]
    assert not decision.allowed
    assert decision.condition_reports  # the team condition, with the values it read
    assert "Conditions that decided" in denied.content.decode()
    assert '"data"' in decision.condition_reports[0].text


def test_a_resource_not_registered_yet_by_type_project_and_tags(
    org: Org, projects: tuple[Project, Project], team_web: Membership
) -> None:
    def create(tags: dict[str, str]) -> Any:
        params = {
            "principal": f"user:{team_web.pk}",
            "action": "compute:instances:create",
            "resource_type": "compute:instances",
            "project": projects[0].pk,
            **tag_rows(tags),
        }
        response = simulate(org, **params)
        assert response.status_code == 200, response.context["form"].errors
        return response

    allowed = create({"team": "web", "env": "prod"})
    assert allowed.context["decision"].allowed
    assert allowed.context["resource"].id is None
    body = allowed.content.decode()
    assert "not registered yet" in body and "env=prod" in body
    assert not create({"team": "data"}).context["decision"].allowed
    assert not create({}).context["decision"].allowed  # removing the tag never grants


def test_a_rule_scoped_to_one_resource_names_it(
    org: Org, projects: tuple[Project, Project]
) -> None:
    chosen = ResourceFactory(project=projects[0], name="db-1")
    other = ResourceFactory(project=projects[0], name="db-2")
    grant(
        org.billing,
        actions=["compute:instances:update"],
        scope=Rule.Scope.RESOURCES,
        resources=[chosen],
    )
    params = {"principal": f"user:{org.billing.pk}", "action": "compute:instances:update"}
    response = simulate(org, **params, resource=chosen.pk)
    assert response.context["decision"].allowed
    assert "instance db-1" in response.content.decode()  # the scope, by name
    assert not simulate(org, **params, resource=other.pk).context["decision"].allowed


def test_another_organizations_resource_is_a_form_error(org: Org) -> None:
    foreign = ResourceFactory(name="theirs")
    response = simulate(
        org, principal=f"user:{org.tech.pk}", action="compute:instances:read", resource=foreign.pk
    )
    assert response.status_code == 400
    assert response.context["form"].errors["resource"] == [
        "Choose a resource of this organization."
    ]
    assert "decision" not in response.context and "theirs" not in response.content.decode()


def test_an_action_of_another_type_is_refused_with_a_message(
    org: Org, projects: tuple[Project, Project]
) -> None:
    bucket = ResourceFactory(project=projects[0], type="storage:buckets")
    response = simulate(
        org, principal=f"user:{org.tech.pk}", action="compute:instances:read", resource=bucket.pk
    )
    assert response.status_code == 400
    (message,) = response.context["form"].errors["action"]
    assert message.startswith("compute:instances:read is not an action on buckets")
    assert "storage:buckets:read" in message
    unregistered = simulate(
        org,
        principal=f"user:{org.tech.pk}",
        action="iam:users:list",
        resource_type="dns:zones",
        project=projects[0].pk,
    )
    assert "is not an action on dns zones" in unregistered.context["form"].errors["action"][0]


def test_an_unregistered_resource_needs_a_project_and_tags_need_a_type(
    org: Org, projects: tuple[Project, Project]
) -> None:
    base = {"principal": f"user:{org.tech.pk}", "action": "compute:instances:create"}
    no_project = simulate(org, **base, resource_type="compute:instances")
    assert no_project.context["form"].errors["project"] == ["Choose the project of the resource."]
    no_type = simulate(org, **base, project=projects[0].pk, **tag_rows({"team": "web"}))
    assert "resource_type" in no_type.context["form"].errors
    bad_key = simulate(
        org,
        **base,
        resource_type="compute:instances",
        project=projects[0].pk,
        **tag_rows({"bad key": "x"}),
    )
    assert bad_key.status_code == 400
    assert any("bad key" in e for e in bad_key.context["form"].non_field_errors())


def test_the_picker_searches_at_most_a_page_of_the_actions_type(
    org: Org, projects: tuple[Project, Project]
) -> None:
    ResourceFactory.create_batch(PICKER_MATCHES + 5, project=projects[0], name="web-node")
    ResourceFactory(project=projects[0], type="storage:buckets", name="web-bucket")
    ResourceFactory(name="web-elsewhere")  # another organization's
    client = org.client_for("tech")
    params = {"pick": "resource", "resource_q": "web", "action": "compute:instances:read"}
    response = client.get(url("simulator", org), params, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('type="radio" name="resource" value="') == PICKER_MATCHES + 1  # + none
    assert "More resources match" in body
    assert "web-bucket" not in body and "web-elsewhere" not in body
    assert "<html" not in body
    # Nothing without a search: never the organization's whole list.
    empty = client.get(url("simulator", org), {"pick": "resource"}).content.decode()
    assert empty.count('name="resource"') == 1
    # The picker is the simulator's: who may not simulate may not search.
    denied = org.client_for("billing").get(url("simulator", org), params)
    assert denied.status_code == 403


# -------------------------------------------------------------- effective permissions


def test_effective_permissions_on_a_registered_resource(
    org: Org, projects: tuple[Project, Project], team_web: Membership
) -> None:
    web = ResourceFactory(project=projects[0], name="web-1", tags={"team": "web"})
    grant(
        team_web,
        effect=Rule.Effect.DENY,
        actions=["compute:instances:delete"],
        scope=Rule.Scope.RESOURCES,
        resources=[web],
    )
    page = url("effective_permissions", org, team_web.pk)
    response = org.client_for("owner").get(page, {"resource": web.pk})
    assert response.status_code == 200
    decided = {d.action: d for d in response.context["decisions"]}
    assert list(decided) == [
        "compute:instances:list",
        "compute:instances:read",
        "compute:instances:create",
        "compute:instances:update",
        "compute:instances:delete",
    ]
    assert decided["compute:instances:read"].allowed
    assert 'resource.tags["team"] is "web"' in decided["compute:instances:read"].explanation
    assert not decided["compute:instances:delete"].allowed
    assert "names this resource" in decided["compute:instances:delete"].explanation
    assert "services" not in response.context  # the per-action table replaces the listing
    # Without a resource, the deny's scope is named by the resource's name.
    listing = org.client_for("owner").get(page).content.decode()
    assert "Instance web-1" in listing


def test_effective_permissions_on_an_unregistered_resource(
    org: Org, projects: tuple[Project, Project], team_web: Membership
) -> None:
    page = url("effective_permissions", org, team_web.pk)
    params = {"resource_type": "storage:buckets", "project": projects[1].pk}
    response = org.client_for("owner").get(page, {**params, **tag_rows({"team": "web"})})
    assert response.status_code == 200
    decisions = response.context["decisions"]
    assert decisions[0].action == "storage:buckets:list"
    assert not any(d.allowed for d in decisions)  # the team policy is about instances
    response = org.client_for("owner").get(
        page, {**params, "resource_type": "compute:instances", **tag_rows({"team": "web"})}
    )
    # Asked with a resource, even list and create are decided with its tags.
    assert all(d.allowed for d in response.context["decisions"])


def test_effective_permissions_refuse_another_organizations_resource(org: Org) -> None:
    foreign = ResourceFactory()
    page = url("effective_permissions", org, org.tech.pk)
    response = org.client_for("owner").get(page, {"resource": foreign.pk})
    assert response.status_code == 400
    assert "Choose a resource of this organization." in response.content.decode()
    assert "decisions" not in response.context


def test_effective_permissions_on_a_resource_query_counts_stay_flat(
    org: Org, projects: tuple[Project, Project], django_assert_max_num_queries
) -> None:
    chosen = ResourceFactory(project=projects[0], name="db-1")
    client = org.client_for("owner")
    page = url("effective_permissions", org, org.tech.pk)

    def attach(count: int) -> None:
        for _ in range(count):
            resource = ResourceFactory(project=projects[0])
            grant(
                org.tech,
                actions=["compute:instances:read"],
                scope=Rule.Scope.RESOURCES,
                resources=[resource, chosen],
            )

    attach(1)
    with django_assert_max_num_queries(20) as small:
        client.get(page, {"resource": chosen.pk})
    attach(15)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(page, {"resource": chosen.pk})
    assert response.status_code == 200
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(page).status_code == 200


# --------------------------------------------------- effective permissions, pure


def _rule(index: int, effect: str, scope: str, **more: Any) -> Any:
    from policies.evaluator import compile_rule

    return compile_rule(
        policy_id="p",
        policy_name="P",
        rule_index=index,
        effect=effect,
        actions=["compute:instances:read"],
        scope=scope,
        **more,
    )


def test_effective_permissions_weigh_resource_scoped_rules() -> None:
    from policies.effective import effective_permissions
    from policies.evaluator import Principal

    web = ("r1", "compute:instances", "pa")
    other = ("r2", "compute:instances", "pa")
    allow = _rule(1, "allow", "resources", resources=[web])
    principal = Principal(type="user", id="u")

    def held(*denies: Any) -> list[Any]:
        return effective_permissions(principal, [allow, *denies], resource_names={"r1": "web-1"})

    (permission,) = held()
    assert permission.scope == "instance web-1"
    assert held(_rule(2, "deny", "resources", resources=[web])) == []
    assert held(_rule(2, "deny", "projects", project_ids=["pa"])) == []
    (untouched,) = held(_rule(2, "deny", "resources", resources=[other]))
    assert untouched.limited_by == ()
    (elsewhere,) = held(_rule(2, "deny", "projects", project_ids=["pb"]))
    assert elsewhere.limited_by == ()
    # A deny on one of the two resources an allow names takes back part of it.
    both = _rule(1, "allow", "resources", resources=[web, other])
    deny = _rule(2, "deny", "resources", resources=[web])
    (partial,) = effective_permissions(principal, [both, deny])
    assert partial.limited_by == (deny.label,)
