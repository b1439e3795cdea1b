"""Rules scoped to chosen resources (#14): stored, compiled, validated, within the author's
rights, taken out of their rules when a resource is deleted, and chosen in the console
with a bounded search-as-you-type picker."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Membership, Organization, Resource
from organizations.services import resources as resource_services
from policies.delegation import DelegationRefused
from policies.models import Policy, PolicyAttachment, Rule
from policies.selectors.rules import compile_rules_for
from policies.services import guardrails as guardrail_services
from policies.services import policies as policy_services
from policies.services import rules as rule_services
from tests.conftest import Org
from tests.factories import (
    MembershipFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def instance(org: Org, name: str = "web-1", **kwargs: object) -> Resource:
    kwargs.setdefault("project", ProjectFactory(organization=org.organization))
    return ResourceFactory(type="compute:instances", name=name, **kwargs)


def add(policy: Policy, org: Org, resources: list[Resource], **values: object) -> Rule:
    values = {"effect": "allow", "actions": ["compute:instances:read"], **values}
    return rule_services.rule_add(
        policy=policy,
        scope="resources",
        resources=resources,
        actor=org.owner.user,
        **values,  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------- compiling


def test_compiling_reads_resource_rules_in_the_same_two_queries(
    org: Org, django_assert_num_queries
) -> None:
    organization = org.organization
    policy = PolicyFactory(organization=organization, name="resources")
    PolicyAttachment.objects.create(policy=policy, membership=org.tech, organization=organization)
    web = instance(org, "web")

    def scoped_rule(position: int) -> None:
        rule = RuleFactory(
            policy=policy, position=position, actions=["compute:instances:read"], scope="resources"
        )
        rule.resources.set([web, instance(org, f"db-{position}", project=web.project)])

    scoped_rule(1)
    with django_assert_num_queries(2):
        compile_rules_for(org.tech)
    for position in range(2, 8):
        scoped_rule(position)
    with django_assert_num_queries(2):
        rules = [r for r in compile_rules_for(org.tech) if r.policy_name == "resources"]
    assert len(rules) == 7


# ------------------------------------------------------------------ services


def test_a_rule_on_chosen_resources_is_stored_audited_and_bumps_the_version(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    web = instance(org)
    before = version(org)
    rule = add(policy, org, [web])
    assert rule.scope == "resources"
    assert list(rule.resources.all()) == [web]
    assert version(org) > before
    event = AuditEvent.objects.get(action="iam.policy.rule_added")
    assert event.data["after"]["resources"] == [str(web.pk)]


def test_another_organizations_resource_is_refused(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    foreign = ResourceFactory()
    with pytest.raises(ValidationError) as caught:
        add(policy, org, [foreign])
    assert "resources" in caught.value.message_dict
    assert not policy.rules.exists()


@pytest.mark.parametrize(
    "actions",
    [
        ["dns:zones:read"],  # not the chosen resource's type
        ["compute:instances:list"],  # decided on the project, never on one resource
        ["compute:instances:create"],
    ],
)
def test_actions_must_be_per_resource_actions_of_a_chosen_type(
    org: Org, actions: list[str]
) -> None:
    policy = PolicyFactory(organization=org.organization)
    with pytest.raises(ValidationError) as caught:
        add(policy, org, [instance(org)], actions=actions)
    assert set(caught.value.message_dict) & {"resources", "actions"}
    assert not policy.rules.exists()


def test_the_resources_scope_needs_a_resource(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    with pytest.raises(ValidationError) as caught:
        add(policy, org, [])
    assert "resources" in caught.value.message_dict


def test_changing_the_scope_away_clears_the_resources(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    rule = add(policy, org, [instance(org)])
    rule_services.rule_update(
        rule=rule,
        effect="allow",
        actions=["compute:instances:read"],
        scope="all_projects",
        resources=[instance(org, "other")],
        actor=org.owner.user,
    )
    rule.refresh_from_db()
    assert rule.scope == "all_projects" and not rule.resources.exists()
    event = AuditEvent.objects.get(action="iam.policy.rule_updated")
    assert event.data["before"]["resources"] and event.data["after"]["resources"] == []


def test_a_guardrail_may_deny_on_chosen_resources(org: Org) -> None:
    web = instance(org)
    rule = guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=["compute:instances:delete"],
        scope="resources",
        resources=[web],
        actor=org.owner.user,
    )
    assert rule.policy.kind == Policy.Kind.GUARDRAIL and list(rule.resources.all()) == [web]


def test_duplicating_a_policy_keeps_its_resources(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    web = instance(org)
    add(policy, org, [web])
    copy = policy_services.policy_duplicate(
        policy=policy, organization=org.organization, actor=org.owner.user
    )
    assert list(copy.rules.get().resources.all()) == [web]


# ------------------------------------------------------------ deleting a resource


def test_deleting_a_resource_takes_it_out_of_its_rules_with_an_event_per_policy(
    org: Org,
) -> None:
    web = instance(org, "web")
    db = instance(org, "db", project=web.project)
    first = PolicyFactory(organization=org.organization, name="first")
    second = PolicyFactory(organization=org.organization, name="second")
    both = add(first, org, [web, db])
    alone = add(first, org, [web], actions=["compute:instances:update"])
    only = add(second, org, [web], effect="deny", actions=["compute:instances:delete"])
    untouched = add(second, org, [db])
    before = version(org)

    resource_services.resource_delete(resource=web, actor=org.owner.user)

    assert list(both.resources.all()) == [db]
    assert not alone.resources.exists() and not only.resources.exists()
    assert list(untouched.resources.all()) == [db]
    assert version(org) > before
    events = {
        e.target_id: e for e in AuditEvent.objects.filter(action="iam.policy.resource_removed")
    }
    assert set(events) == {str(first.pk), str(second.pk)}
    data = events[str(first.pk)].data
    assert data["resource"]["name"] == "web"
    assert [(r["position"], r["resources_left"]) for r in data["rules"]] == [(1, 1), (2, 0)]
    assert "match nothing" in data["note"] and "2" in data["note"]
    assert AuditEvent.objects.filter(action="projects.resource.deleted").count() == 1
    # A rule left with no resource compiles to one matching nothing (strict=False).
    PolicyAttachment.objects.create(
        policy=first, membership=org.tech, organization=org.organization
    )
    assert len(compile_rules_for(org.tech)) >= 2


def test_deleting_a_resource_named_by_the_guardrails_updates_them(org: Org) -> None:
    web = instance(org)
    guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=["compute:instances:delete"],
        scope="resources",
        resources=[web],
        actor=org.owner.user,
    )
    resource_services.resource_delete(resource=web, actor=org.owner.user)
    event = AuditEvent.objects.filter(action="iam.guardrail.updated").latest("id")
    assert event.data["change"] == "resource_removed"


# -------------------------------------------------------------- the ceiling


@pytest.fixture
def target(org: Org) -> Policy:
    """A policy attached to someone, so its rules reach a principal."""
    policy = PolicyFactory(organization=org.organization, name="target")
    PolicyAttachment.objects.create(
        policy=policy, membership=org.readonly, organization=org.organization
    )
    return policy


def delegated_admin(org: Org, scope: str, **places: list[object]) -> Membership:
    """An IAM manager who also holds compute:instances:* in `scope`."""
    author = MembershipFactory(organization=org.organization)
    holds = PolicyFactory(organization=org.organization, name=f"holds-{author.pk}")
    RuleFactory(policy=holds, position=1, actions=["IAMManager"])
    rule = RuleFactory(policy=holds, position=2, actions=["compute:instances:*"], scope=scope)
    for name, objects in places.items():
        getattr(rule, name).set(objects)
    PolicyAttachment.objects.create(policy=holds, membership=author, organization=org.organization)
    return author


def test_a_project_admin_cannot_grant_on_a_resource_of_another_project(
    org: Org, target: Policy
) -> None:
    a, b = (ProjectFactory(organization=org.organization) for _ in range(2))
    in_a, in_b = instance(org, "a", project=a), instance(org, "b", project=b)
    author = delegated_admin(org, "projects", projects=[a])

    def grant(resource: Resource) -> Rule:
        return rule_services.rule_add(
            policy=target,
            effect="allow",
            actions=["compute:instances:update"],
            scope="resources",
            resources=[resource],
            actor=author.user,
        )

    with pytest.raises(DelegationRefused, match="compute:instances:update"):
        grant(in_b)
    assert not target.rules.exists()
    grant(in_a)


def test_a_resource_admin_grants_on_that_resource_only(org: Org, target: Policy) -> None:
    project = ProjectFactory(organization=org.organization)
    r, s = instance(org, "r", project=project), instance(org, "s", project=project)
    author = delegated_admin(org, "resources", resources=[r])

    def grant(*resources: Resource) -> Rule:
        return rule_services.rule_add(
            policy=target,
            effect="allow",
            actions=["compute:instances:read"],
            scope="resources",
            resources=list(resources),
            actor=author.user,
        )

    with pytest.raises(DelegationRefused, match="resource s"):
        grant(r, s)
    with pytest.raises(DelegationRefused):
        grant(s)
    grant(r)
    # Nor the whole project, from a grant on one of its resources.
    with pytest.raises(DelegationRefused):
        rule_services.rule_add(
            policy=target,
            effect="allow",
            actions=["compute:instances:read"],
            scope="projects",
            projects=[project],
            actor=author.user,
        )


def test_lifting_a_deny_on_a_resource_needs_its_actions_there(org: Org, target: Policy) -> None:
    project = ProjectFactory(organization=org.organization)
    r, s = instance(org, "r", project=project), instance(org, "s", project=project)
    deny = add(target, org, [s], effect="deny", actions=["compute:instances:delete"])
    author = delegated_admin(org, "resources", resources=[r])
    with pytest.raises(DelegationRefused):
        rule_services.rule_remove(rule=deny, actor=author.user)
    assert Rule.objects.filter(pk=deny.pk).exists()


# ---------------------------------------------------------------- the console


def picker_url(org: Org, policy: Policy) -> str:
    return reverse("policies:rule_resources", args=[org.organization.pk, policy.pk])


@pytest.fixture
def owner_client(org: Org) -> Client:
    return org.client_for("owner")


def test_the_picker_searches_by_name_and_tag_and_is_bounded(org: Org, owner_client: Client) -> None:
    policy = PolicyFactory(organization=org.organization)
    project = ProjectFactory(organization=org.organization)
    for n in range(25):
        instance(org, f"web-{n:02}", project=project, tags={"team": "web"})
    instance(org, "billing-db", project=project, tags={"team": "billing"})
    ResourceFactory(name="web-foreign")  # another organization's

    response = owner_client.get(picker_url(org, policy), {"resource_q": "web"}, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert body.count('type="checkbox"') == 20
    assert "More resources match" in body and "web-foreign" not in body

    body = owner_client.get(picker_url(org, policy), {"resource_q": "team=billing"}).content
    assert b"billing-db" in body and b"web-00" not in body
    # Nothing without a search: never the organization-sized list.
    assert owner_client.get(picker_url(org, policy)).content.decode().count("checkbox") == 0


def test_the_picker_keeps_ticked_resources_and_filters_by_the_actions_types(
    org: Org, owner_client: Client
) -> None:
    policy = PolicyFactory(organization=org.organization)
    project = ProjectFactory(organization=org.organization)
    chosen = instance(org, "app-chosen", project=project)
    instance(org, "app-vm", project=project)
    ResourceFactory(project=project, type="dns:zones", name="app-zone")
    response = owner_client.get(
        picker_url(org, policy),
        {
            "resource_q": "app",
            "resources": [str(chosen.pk)],
            "actions": "compute:instances:read",
            "form_id": "new-rule",
        },
    )
    body = response.content.decode()
    assert 'id="new-rule-resource-options"' in body
    assert f'value="{chosen.pk}" checked' in body
    assert body.count(str(chosen.pk)) == 1  # not again among the matches
    assert "app-vm" in body and "app-zone" not in body


def test_the_picker_needs_the_editors_permission(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    response = org.client_for("readonly").get(picker_url(org, policy), {"resource_q": "x"})
    assert response.status_code == 403
    assert "iam:policies:update" in response.content.decode()
    guardrails = reverse("policies:guardrail_rule_resources", args=[org.organization.pk])
    assert org.client_for("readonly").get(guardrails).status_code == 403
    assert org.client_for("owner").get(guardrails, {"resource_q": "x"}).status_code == 200
    assert org.client_for("outsider").get(picker_url(org, policy)).status_code == 404


def test_the_rule_editor_saves_chosen_resources_and_keeps_them_on_errors(
    org: Org, owner_client: Client
) -> None:
    policy = PolicyFactory(organization=org.organization)
    web = instance(org, "web-picked")
    add_url = reverse("policies:rule_add", args=[org.organization.pk, policy.pk])
    refused = owner_client.post(
        add_url,
        {
            "effect": "allow",
            "actions": "dns:zones:read",
            "scope": "resources",
            "resources": [str(web.pk)],
        },
        headers=HTMX,
    )
    body = refused.content.decode()
    assert not policy.rules.exists()  # HTMX gets the refused form back with a 200
    assert f'value="{web.pk}" checked' in body and "web-picked" in body

    saved = owner_client.post(
        add_url,
        {
            "effect": "allow",
            "actions": "compute:instances:read",
            "scope": "organization",  # the default, as the page posts it
            "resources": [str(web.pk)],
        },
        headers=HTMX,
    )
    assert saved.status_code == 200, saved.content.decode()[:500]
    rule = policy.rules.get()
    # Ticked under the default (organization) scope: the rule is meant for them.
    assert rule.scope == "resources" and list(rule.resources.all()) == [web]
    assert "Resources: web-picked" in saved.content.decode()

    edit = reverse("policies:rule_update", args=[org.organization.pk, policy.pk, rule.pk])
    page = owner_client.get(edit, headers=HTMX).content.decode()
    assert f'value="{web.pk}" checked' in page
    assert f'id="rule-{rule.pk}-resource-options"' in page


def test_the_policy_page_runs_the_same_queries_for_1_or_10_resource_rules(
    org: Org, owner_client: Client, django_assert_max_num_queries
) -> None:
    policy = PolicyFactory(organization=org.organization)
    project = ProjectFactory(organization=org.organization)
    page = reverse("policies:policy_detail", args=[org.organization.pk, policy.pk])

    def scoped_rule(position: int) -> None:
        rule = RuleFactory(
            policy=policy, position=position, actions=["compute:instances:read"], scope="resources"
        )
        rule.resources.set([instance(org, f"vm-{position}-{n}", project=project) for n in range(3)])

    scoped_rule(1)
    with django_assert_max_num_queries(40) as small:
        owner_client.get(page)
    for position in range(2, 11):
        scoped_rule(position)
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = owner_client.get(page).content.decode()
    assert "vm-10-2" in body
