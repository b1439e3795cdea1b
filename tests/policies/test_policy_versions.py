"""Policy versions (#16 item 5): every save keeps one, the policy page lists them, any can
be restored within the author's rights, and the 403 page names the deciding version."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import events
from audit.models import AuditEvent
from organizations.models import Membership, Organization
from policies.delegation import DelegationRefused
from policies.models import Policy, PolicyAttachment, PolicyVersion
from policies.selectors import versions as version_selectors
from policies.selectors.rules import compile_rules_for
from policies.services import guardrails as guardrail_services
from policies.services import policies as policy_services
from policies.services import rules as rule_services
from tests.conftest import Org
from tests.factories import (
    MembershipFactory,
    PolicyFactory,
    PolicyVersionFactory,
    ProjectFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"policies:{name}", args=[org.organization.pk, *args])


def changes(policy: Policy) -> list[str]:
    return list(policy.versions.order_by("number").values_list("change", flat=True))


def authz_version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def allow(policy: Policy, actor: object, *actions: str, **more: object) -> None:
    rule_services.rule_add(
        policy=policy,
        effect="allow",
        actions=list(actions),
        scope="organization",
        actor=actor,
        **more,
    )


@pytest.fixture
def iam(org: Org) -> Membership:
    """An IAM manager, not an owner: bound by the delegation ceiling."""
    membership = MembershipFactory(organization=org.organization)
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    membership.policy_attachments.create(policy=policy, organization=org.organization)
    return membership


# ------------------------------------------------------------------ recording


def test_each_save_path_records_exactly_one_version_with_its_change(org: Org) -> None:
    owner = org.owner.user
    policy = policy_services.policy_create(organization=org.organization, name="Devs", actor=owner)
    assert changes(policy) == ["created"] and policy.version == 1
    policy_services.policy_update(
        policy=policy, name="Devs", description="", labels=[], actor=owner
    )
    assert changes(policy) == ["created"]  # nothing changed, nothing kept
    policy_services.policy_update(
        policy=policy, name="Developers", description="d", labels=[], actor=owner
    )
    allow(policy, owner, "iam:users:list")
    allow(policy, owner, "iam:groups:list")
    first, second = policy.rules.order_by("position")
    rule_services.rule_update(
        rule=first, effect="allow", actions=["iam:users:read"], scope="organization", actor=owner
    )
    rule_services.rule_move(rule=second, direction="up", actor=owner)
    rule_services.rule_remove(rule=first, actor=owner)
    assert changes(policy) == [
        "created",
        "details edited",
        "rule 1 added",
        "rule 2 added",
        "rule 1 edited",
        "rule 2 moved up",
        "rule 2 removed",
    ]
    policy.refresh_from_db()
    latest = policy.versions.first()
    assert policy.version == latest.number == 7
    assert (latest.name, latest.author, latest.author_label) == ("Developers", owner, owner.email)
    assert [(r["position"], r["actions"]) for r in latest.rules] == [(1, ["iam:groups:list"])]
    assert set(latest.rules[0]) == {
        "position",
        "effect",
        "actions",
        "scope",
        "projects",
        "resources",
        "condition",
    }

    copy = policy_services.policy_duplicate(
        policy=policy, organization=org.organization, actor=owner
    )
    assert changes(copy) == ["duplicated from Developers"] and copy.version == 1
    assert copy.versions.get().rules == latest.rules
    assert policy.versions.count() == 7


def test_guardrail_edits_are_versioned_and_managed_policies_are_not(org: Org) -> None:
    rule = guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=["billing:*"],
        scope="organization",
        actor=org.owner.user,
    )
    assert changes(rule.policy) == ["rule 1 added"]
    assert not PolicyVersion.objects.filter(policy__kind=Policy.Kind.MANAGED).exists()
    policy_services.sync_managed_policies()
    assert not PolicyVersion.objects.filter(policy__kind=Policy.Kind.MANAGED).exists()


def test_the_author_label_outlives_the_author(org: Org) -> None:
    author = MembershipFactory(organization=org.organization, is_owner=True).user
    policy = policy_services.policy_create(organization=org.organization, name="P", actor=author)
    email = author.email
    author.delete()
    version = policy.versions.get()
    assert (version.author, version.author_label) == (None, email)


def test_the_data_migration_keeps_existing_policies_as_version_1(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    policy = PolicyFactory(organization=org.organization, name="Old")
    rule = RuleFactory(policy=policy, position=1, scope="projects")
    rule.projects.set([project])
    migration = importlib.import_module("policies.migrations.0004_policy_versions")
    migration.first_versions(apps, None)
    (version,) = policy.versions.all()
    assert version.number == 1 and version.rules[0]["projects"] == [str(project.pk)]
    assert not PolicyVersion.objects.filter(policy__kind=Policy.Kind.MANAGED).exists()


# ----------------------------------------------------------------------- diff


def test_compare_names_added_removed_and_changed_rules_by_position() -> None:
    rule = {"position": 1, "effect": "allow", "actions": ["a"], "scope": "organization"}
    before = [rule, {**rule, "position": 2}]
    after = [{**rule, "actions": ["b"]}, {**rule, "position": 2}, {**rule, "position": 3}]
    found = [(c.position, c.status, c.fields) for c in version_selectors.compare(before, after)]
    assert found == [(1, "changed", ("actions",)), (2, "same", ()), (3, "added", ())]
    removed = version_selectors.compare(after, before)[-1]
    assert (removed.position, removed.status) == (3, "removed")


def test_the_version_page_shows_its_rules_and_what_changed(org: Org) -> None:
    owner = org.owner.user
    project = ProjectFactory(organization=org.organization, name="Apollo")
    policy = policy_services.policy_create(organization=org.organization, name="Devs", actor=owner)
    allow(policy, owner, "iam:users:list")
    rule_services.rule_add(
        policy=policy,
        effect="allow",
        actions=["projects:projects:read"],
        scope="projects",
        projects=[project],
        actor=owner,
    )
    rule_services.rule_update(
        rule=policy.rules.get(position=1),
        effect="deny",
        actions=["iam:users:list"],
        scope="organization",
        actor=owner,
    )
    client = org.client_for("readonly")
    response = client.get(url("version_detail", org, policy.pk, 4))
    assert response.status_code == 200
    diff = response.context["diff"]
    assert diff.previous.number == 3
    assert [(c.position, c.status, c.fields) for c in diff.rules] == [
        (1, "changed", ("effect",)),
        (2, "same", ()),
    ]
    body = response.content.decode()
    assert "Rule 1 edited" in body and "Changed: effect" in body and "Apollo" in body
    assert "Restore this version" not in body  # the current one, and a reader
    assert client.get(url("version_detail", org, policy.pk, 99)).status_code == 404
    assert client.get(url("version_detail", org, policy.pk, 10**20)).status_code == 404


# ----------------------------------------------------------------------- list


def test_the_policy_page_loads_the_versions_card_which_is_paged(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization, name="Devs")
    for number in range(1, 14):
        PolicyVersionFactory(policy=policy, number=number, change=f"change {number}")
    policy.version = 13
    policy.save()
    client = org.client_for("readonly")
    page = client.get(url("policy_detail", org, policy.pk)).content.decode()
    assert url("version_list", org, policy.pk) in page
    card = client.get(url("version_list", org, policy.pk), headers={"HX-Request": "true"})
    body = card.content.decode()
    assert "<html" not in body and "Change 13" in body and "Change 3" not in body
    assert [v.number for v in card.context["versions_page"]] == list(range(13, 3, -1))
    second = client.get(url("version_list", org, policy.pk) + "?page=2")
    assert [v.number for v in second.context["versions_page"]] == [3, 2, 1]
    assert "Page 2 of 2" in second.content.decode()


def test_the_version_list_runs_the_same_queries_for_3_or_30_versions(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization, name="Devs")
    client = org.client_for("readonly")
    target = url("version_list", org, policy.pk)

    def count() -> int:
        client.get(target)  # warm the caches a first request fills
        with CaptureQueriesContext(connection) as queries:
            assert client.get(target).status_code == 200
        return len(queries)

    PolicyVersionFactory.create_batch(3, policy=policy)
    small = count()
    PolicyVersionFactory.create_batch(27, policy=policy)
    assert count() == small


def test_another_organizations_policy_and_versions_are_404(org: Org) -> None:
    elsewhere = PolicyFactory(name="Elsewhere")
    PolicyVersionFactory(policy=elsewhere, number=1)
    client = org.client_for("owner")
    for name, args in (
        ("version_list", ()),
        ("version_detail", (1,)),
        ("version_restore", (1,)),
    ):
        assert client.get(url(name, org, elsewhere.pk, *args)).status_code == 404
        assert client.post(url(name, org, elsewhere.pk, *args)).status_code in (404, 405)
    assert elsewhere.versions.count() == 1


# -------------------------------------------------------------------- restore


def test_restore_replaces_the_rules_is_audited_and_bumps_the_authz_version(org: Org) -> None:
    owner = org.owner.user
    apollo = ProjectFactory(organization=org.organization, name="Apollo")
    gone = ProjectFactory(organization=org.organization, name="Gone")
    policy = policy_services.policy_create(organization=org.organization, name="Devs", actor=owner)
    rule_services.rule_add(
        policy=policy,
        effect="allow",
        actions=["projects:projects:read"],
        scope="projects",
        projects=[apollo, gone],
        actor=owner,
    )
    allow(policy, owner, "iam:users:list")  # version 3
    rule_services.rule_remove(rule=policy.rules.get(position=1), actor=owner)  # version 4
    gone.delete()
    before = authz_version(org)

    version = policy.versions.get(number=3)
    restored = rule_services.policy_restore(policy=policy, version=version, actor=owner)

    assert restored.version.number == 5 and restored.version.change == "restored version 3"
    assert restored.dropped == ["Rule 1: 1 project no longer exists, left out."]
    rules = list(policy.rules.order_by("position"))
    assert [(r.position, r.actions) for r in rules] == [
        (1, ["projects:projects:read"]),
        (2, ["iam:users:list"]),
    ]
    assert list(rules[0].projects.all()) == [apollo]
    assert authz_version(org) == before + 1
    event = AuditEvent.objects.get(action=events.POLICY_RESTORED.name)
    assert (event.data["restored_version"], event.data["from_version"]) == (3, 4)
    assert event.data["to_version"] == 5 and event.target_id == str(policy.pk)
    policy.refresh_from_db()
    assert policy.version == 5


def test_restore_through_the_page_confirms_first_then_restores(org: Org) -> None:
    owner = org.owner.user
    policy = policy_services.policy_create(organization=org.organization, name="Devs", actor=owner)
    allow(policy, owner, "iam:users:list")
    rule_services.rule_remove(rule=policy.rules.get(), actor=owner)
    client = org.client_for("owner")
    detail = client.get(url("version_detail", org, policy.pk, 2)).content.decode()
    assert url("version_restore", org, policy.pk, 2) in detail

    confirm = client.get(url("version_restore", org, policy.pk, 2))
    assert confirm.status_code == 200 and "Restore version 2 of Devs?" in confirm.content.decode()
    assert policy.versions.count() == 3

    response = client.post(url("version_restore", org, policy.pk, 2))
    assert response.status_code == 302 and response.url == url("policy_detail", org, policy.pk)
    assert list(policy.rules.values_list("actions", flat=True)) == [["iam:users:list"]]
    assert changes(policy)[-1] == "restored version 2"


def test_readers_cannot_restore(org: Org) -> None:
    owner = org.owner.user
    policy = policy_services.policy_create(organization=org.organization, name="Devs", actor=owner)
    allow(policy, owner, "iam:users:list")
    client = org.client_for("readonly")
    assert client.get(url("version_restore", org, policy.pk, 1)).status_code == 403
    assert client.post(url("version_restore", org, policy.pk, 1)).status_code == 403
    assert policy.rules.count() == 1 and policy.versions.count() == 2


def test_restore_beyond_the_authors_rights_is_refused(org: Org, iam: Membership) -> None:
    policy = policy_services.policy_create(
        organization=org.organization, name="mine", actor=org.owner.user
    )
    allow(policy, org.owner.user, "billing:*")  # version 2
    rule_services.rule_update(
        rule=policy.rules.get(),
        effect="allow",
        actions=["iam:users:list"],
        scope="organization",
        actor=org.owner.user,
    )  # version 3
    PolicyAttachment.objects.create(policy=policy, membership=iam, organization=org.organization)
    before = authz_version(org)
    with pytest.raises(DelegationRefused):
        rule_services.policy_restore(
            policy=policy, version=policy.versions.get(number=2), actor=iam.user
        )
    client = Client()
    client.force_login(iam.user)

    response = client.post(url("version_restore", org, policy.pk, 2))

    assert response.status_code == 403
    assert "You can only grant what you hold yourself" in response.content.decode()
    assert list(policy.rules.values_list("actions", flat=True)) == [["iam:users:list"]]
    assert policy.versions.count() == 3 and authz_version(org) == before
    assert not AuditEvent.objects.filter(action=events.POLICY_RESTORED.name).exists()
    # Within their rights, the same author may restore.
    rule_services.policy_restore(
        policy=policy, version=policy.versions.get(number=3), actor=iam.user
    )
    assert changes(policy)[-1] == "restored version 3"


# ------------------------------------------------------------- explanations


def test_compiled_rules_and_the_403_page_name_the_deciding_version(org: Org) -> None:
    owner = org.owner.user
    policy = policy_services.policy_create(
        organization=org.organization, name="No policies", actor=owner
    )
    rule_services.rule_add(
        policy=policy,
        effect="deny",
        actions=["iam:policies:list"],
        scope="organization",
        actor=owner,
    )
    policy_services.policy_update(
        policy=policy, name="No policies", description="why", labels=[], actor=owner
    )
    PolicyAttachment.objects.create(
        policy=policy, membership=org.readonly, organization=org.organization
    )
    (rule,) = [r for r in compile_rules_for(org.readonly) if r.policy_name == "No policies"]
    assert rule.policy_version == 3
    assert rule.label == "rule 1 of policy No policies"  # explanations keep their wording

    response = org.client_for("readonly").get(url("policy_list", org))

    assert response.status_code == 403
    body = response.content.decode()
    assert "A deny rule refuses it: rule 1 of policy No policies" in body
    assert "Decided by version 3 of policy No policies." in body


def test_the_simulator_names_the_deciding_version(org: Org) -> None:
    owner = org.owner.user
    policy = policy_services.policy_create(organization=org.organization, name="Ops", actor=owner)
    allow(policy, owner, "iam:groups:list")
    allow(policy, owner, "iam:users:list")  # version 3
    PolicyAttachment.objects.create(
        policy=policy, membership=org.billing, organization=org.organization
    )
    simulator = reverse("iamtools:simulator", args=[org.organization.pk])
    response = org.client_for("owner").get(
        simulator, {"principal": org.billing.pk, "action": "iam:users:list"}
    )
    body = response.content.decode()
    assert "of policy <strong>Ops</strong>, version 3" in body
