from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from organizations.models import Organization
from policies.models import Policy, Rule
from policies.services import attachments as attachment_services
from policies.services import guardrails as guardrail_services
from policies.services import policies as policy_services
from policies.services import rules as rule_services
from tests.conftest import Org
from tests.factories import PolicyFactory, ProjectFactory, RuleFactory

pytestmark = pytest.mark.django_db


def version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def positions(policy: Policy) -> list[int]:
    return list(policy.rules.order_by("position").values_list("position", flat=True))


def add(policy: Policy, org: Org, **values: object) -> Rule:
    values = {"effect": "allow", "actions": ["iam:users:list"], "scope": "organization", **values}
    return rule_services.rule_add(policy=policy, **values, actor=org.owner.user)  # type: ignore[arg-type]


def test_create_policy_records_the_event_and_cleans_labels(org: Org) -> None:
    policy = policy_services.policy_create(
        organization=org.organization,
        name="  Devs ",
        description="For developers",
        labels=["team-a", " ", "team-a", "prod"],
        actor=org.owner.user,
    )
    assert (policy.name, policy.labels) == ("Devs", ["team-a", "prod"])
    event = AuditEvent.objects.get(action="iam.policy.created")
    assert event.target_id == str(policy.pk)
    assert event.data["after"]["name"] == "Devs"


def test_labels_with_control_characters_are_refused_by_name(org: Org) -> None:
    """PostgreSQL refuses NUL in text and JSON: a clear message, not a database error."""
    with pytest.raises(ValidationError) as caught:
        policy_services.policy_create(
            organization=org.organization,
            name="Devs",
            labels=["ok", "a\x00b"],
            actor=org.owner.user,
        )
    assert "U+0000" in str(caught.value.message_dict["labels"])
    assert not Policy.objects.filter(name="Devs").exists()


@pytest.mark.parametrize("name", ["devs", "DEVS", "readonlyaccess", "Organization guardrails"])
def test_policy_names_are_unique_per_organization_ignoring_case(org: Org, name: str) -> None:
    PolicyFactory(organization=org.organization, name="Devs")
    with pytest.raises(ValidationError) as caught:
        policy_services.policy_create(
            organization=org.organization, name=name, actor=org.owner.user
        )
    assert "already exists" in caught.value.message_dict["name"][0]


def test_the_same_name_is_fine_in_another_organization(org: Org) -> None:
    PolicyFactory(name="Devs")
    policy_services.policy_create(organization=org.organization, name="devs", actor=org.owner.user)


def test_managed_policies_refuse_every_write(org: Org) -> None:
    managed = Policy.objects.get(name="TechAccess")
    rule = managed.rules.first()
    attempts = [
        lambda: policy_services.policy_update(
            policy=managed, name="X", description="", labels=[], actor=org.owner.user
        ),
        lambda: policy_services.policy_delete(policy=managed, actor=org.owner.user),
        lambda: add(managed, org),
        lambda: rule_services.rule_remove(rule=rule, actor=org.owner.user),
        lambda: rule_services.rule_move(rule=rule, direction="down", actor=org.owner.user),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError, match="read-only"):
            attempt()
    assert managed.rules.count() == 2


def test_update_policy_bumps_the_version_and_records_before_and_after(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization, name="Devs")
    before = version(org)
    policy_services.policy_update(
        policy=policy, name="Developers", description="d", labels=["x"], actor=org.owner.user
    )
    assert version(org) == before + 1
    event = AuditEvent.objects.get(action="iam.policy.updated")
    assert event.data["before"]["name"] == "Devs"
    assert event.data["after"] == {"name": "Developers", "description": "d", "labels": ["x"]}


def test_duplicate_copies_rules_and_projects_under_a_free_name(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    policy = PolicyFactory(organization=org.organization, name="Devs", labels=["a"])
    add(policy, org)
    add(policy, org, effect="deny", actions=["compute:*"], scope="projects", projects=[project])
    copy = policy_services.policy_duplicate(
        policy=policy, organization=org.organization, actor=org.owner.user
    )
    again = policy_services.policy_duplicate(
        policy=policy, organization=org.organization, actor=org.owner.user
    )
    assert (copy.name, again.name) == ("Copy of Devs", "Copy of Devs (2)")
    rules = list(copy.rules.order_by("position"))
    assert [(r.position, r.effect, r.actions) for r in rules] == [
        (1, "allow", ["iam:users:list"]),
        (2, "deny", ["compute:*"]),
    ]
    assert list(rules[1].projects.all()) == [project]
    assert copy.labels == ["a"] and not copy.attachments.exists()
    assert AuditEvent.objects.filter(action="iam.policy.duplicated").count() == 2


def test_a_managed_policy_duplicates_into_an_editable_custom_policy(org: Org) -> None:
    copy = policy_services.policy_duplicate(
        policy=Policy.objects.get(name="ReadOnlyAccess"),
        organization=org.organization,
        actor=org.owner.user,
    )
    assert copy.kind == Policy.Kind.CUSTOM and copy.organization == org.organization
    assert copy.rules.count() == 2
    add(copy, org)


def test_delete_policy_takes_its_attachments_and_bumps_the_version(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    add(policy, org)
    attachment_services.policy_attach(policy=policy, principal=org.tech, actor=org.owner.user)
    before = version(org)
    policy_services.policy_delete(policy=policy, actor=org.owner.user)
    assert not Policy.objects.filter(pk=policy.pk).exists()
    assert not org.tech.policy_attachments.filter(policy_id=policy.pk).exists()
    assert version(org) == before + 1
    event = AuditEvent.objects.get(action="iam.policy.deleted")
    assert event.data["before"]["attached_to"] == [str(org.tech.user_id)]
    assert len(event.data["before"]["rules"]) == 1


def test_rules_are_appended_and_each_change_bumps_the_version(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    before = version(org)
    add(policy, org)
    add(policy, org, actions=["BillingReadOnly"])
    assert positions(policy) == [1, 2]
    assert version(org) == before + 2
    assert AuditEvent.objects.filter(action="iam.policy.rule_added").count() == 2


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"actions": ["compute:instances:list"]}, "actions", "project-level action"),
        ({"actions": ["iam:nothing:here"]}, "actions", "Unknown action"),
        ({"condition": "request.ip == "}, "condition", ""),
        ({"condition": "request.nope"}, "condition", ""),
        ({"scope": "projects", "actions": ["compute:*"]}, "projects", "at least one project"),
    ],
)
def test_an_invalid_rule_is_refused_with_its_field_and_nothing_saved(
    org: Org, values: dict[str, object], field: str, message: str
) -> None:
    policy = PolicyFactory(organization=org.organization)
    before = version(org)
    with pytest.raises(ValidationError) as caught:
        add(policy, org, **values)
    assert message in caught.value.message_dict[field][0]
    assert not policy.rules.exists()
    assert version(org) == before
    assert not AuditEvent.objects.filter(action__startswith="iam.policy.rule").exists()


def test_a_rule_cannot_name_another_organizations_project(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    with pytest.raises(ValidationError, match="this organization"):
        add(policy, org, actions=["compute:*"], scope="projects", projects=[ProjectFactory()])


def test_update_rule_keeps_its_position_and_records_before_and_after(org: Org) -> None:
    project = ProjectFactory(organization=org.organization)
    policy = PolicyFactory(organization=org.organization)
    add(policy, org)
    rule = add(policy, org)
    rule_services.rule_update(
        rule=rule,
        effect="deny",
        actions=["StorageFullAccess"],
        scope="projects",
        projects=[project],
        condition='request.user_agent.contains("curl")',
        actor=org.owner.user,
    )
    rule.refresh_from_db()
    assert (rule.position, rule.effect, rule.scope) == (2, "deny", "projects")
    assert list(rule.projects.all()) == [project]
    event = AuditEvent.objects.get(action="iam.policy.rule_updated")
    assert event.data["before"]["effect"] == "allow"
    assert event.data["after"]["projects"] == [str(project.pk)]


def test_move_and_remove_keep_positions_contiguous(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    first, second, third = (add(policy, org) for _ in range(3))
    rule_services.rule_move(rule=third, direction="up", actor=org.owner.user)
    order = list(policy.rules.order_by("position").values_list("pk", flat=True))
    assert order == [first.pk, third.pk, second.pk]
    rule_services.rule_move(rule=first, direction="up", actor=org.owner.user)  # already first
    rule_services.rule_remove(rule=first, actor=org.owner.user)
    assert positions(policy) == [1, 2]
    order = list(policy.rules.order_by("position").values_list("pk", flat=True))
    assert order == [third.pk, second.pk]
    assert AuditEvent.objects.filter(action="iam.policy.rules_reordered").count() == 1
    assert AuditEvent.objects.filter(action="iam.policy.rule_removed").count() == 1


def test_first_guardrail_rule_creates_the_guardrail_policy(org: Org) -> None:
    rule = guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=["billing:*"],
        scope="organization",
        actor=org.owner.user,
    )
    assert rule.policy.kind == Policy.Kind.GUARDRAIL
    guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=["iam:*"],
        scope="organization",
        actor=org.owner.user,
    )
    assert Policy.objects.filter(kind="guardrail", organization=org.organization).count() == 1
    assert AuditEvent.objects.filter(action="iam.guardrail.updated").count() == 2


def test_an_allow_guardrail_is_refused_and_creates_nothing(org: Org) -> None:
    with pytest.raises(ValidationError, match="only deny"):
        guardrail_services.guardrail_rule_add(
            organization=org.organization,
            effect="allow",
            actions=["billing:*"],
            scope="organization",
            actor=org.owner.user,
        )
    assert not Policy.objects.filter(kind="guardrail").exists()


def test_attach_and_detach_bump_the_version_once_and_are_audited(org: Org) -> None:
    policy = PolicyFactory(organization=org.organization)
    before = version(org)
    for _ in range(2):
        attachment_services.policy_attach(policy=policy, principal=org.tech, actor=org.owner.user)
    assert version(org) == before + 1
    for _ in range(2):
        attachment_services.policy_detach(policy=policy, principal=org.tech, actor=org.owner.user)
    assert version(org) == before + 2
    detached = AuditEvent.objects.get(action="iam.policy.detached")
    assert detached.data == {"principal": {"type": "user", "id": str(org.tech.user_id)}}


def test_guardrails_and_foreign_policies_cannot_be_attached(org: Org) -> None:
    guardrail = PolicyFactory(organization=org.organization, kind="guardrail")
    RuleFactory(policy=guardrail, effect="deny")
    for policy in (guardrail, PolicyFactory()):
        with pytest.raises(ValidationError):
            attachment_services.policy_attach(
                policy=policy, principal=org.tech, actor=org.owner.user
            )
