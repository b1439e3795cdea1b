"""The delegation ceiling: nobody grants more than they hold (design.md, Actions, permission
sets, policies). The attacks of issue #10 by an IAM administrator who is not an owner."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Membership, Organization
from organizations.services import api_keys as api_key_services
from organizations.services import groups as group_services
from organizations.services import invitations as invitation_services
from organizations.services import people as people_services
from policies.delegation import ALL_PROJECTS, DelegationRefused, Grant, widening
from policies.evaluator import compile_rule
from policies.models import Policy, PolicyAttachment, Rule
from policies.services import attachments as attachment_services
from policies.services import guardrails as guardrail_services
from policies.services import rules as rule_services
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _rule(effect: str = "allow", actions=("billing:invoices:read",), scope="organization", **kw):
    return compile_rule(
        policy_id="p",
        policy_name="p",
        rule_index=1,
        effect=effect,
        actions=actions,
        scope=scope,
        **kw,
    )


# -------------------------------------------------------------------- the computation


def test_an_added_allow_widens_and_a_removed_one_does_not() -> None:
    rule = _rule()
    assert widening([], [rule]) == [Grant("billing:invoices:read", "organization")]
    assert widening([rule], []) == []
    assert widening([rule], [rule]) == []


def test_lifting_a_deny_widens() -> None:
    deny = _rule("deny", ("billing:*",))
    assert {g.action for g in widening([deny], [])} == {
        "billing:invoices:list",
        "billing:invoices:read",
        "billing:contact:read",
        "billing:contact:update",
    }
    assert widening([], [deny]) == []


def test_a_condition_dropped_or_a_scope_widened_counts_but_a_narrowing_does_not() -> None:
    office = 'ip_in_range(request.ip, "10.0.0.0/8")'
    conditional = _rule(condition=office)
    plain = _rule()
    assert widening([conditional], [plain]) == [Grant("billing:invoices:read", "organization")]
    assert widening([plain], [conditional]) == []
    one = _rule(actions=("compute:instances:list",), scope="projects", project_ids=["a"])
    every = _rule(actions=("compute:instances:list",), scope="all_projects")
    assert widening([one], [every]) == [Grant("compute:instances:list", ALL_PROJECTS)]
    assert widening([every], [one]) == []


def test_a_grant_on_a_resource_is_covered_by_its_project_or_all_projects() -> None:
    read = ("compute:instances:read",)
    on_r = _rule(actions=read, scope="resources", resources=[("r", "compute:instances", "a")])
    on_s = _rule(actions=read, scope="resources", resources=[("s", "compute:instances", "a")])
    in_a = _rule(actions=read, scope="projects", project_ids=["a"])
    in_b = _rule(actions=read, scope="projects", project_ids=["b"])
    everywhere = _rule(actions=read, scope="all_projects")
    grant_r = Grant("compute:instances:read", "a", "r")
    assert widening([], [on_r]) == [grant_r]
    assert widening([on_s], [on_r]) == [grant_r]
    assert widening([in_b], [on_r]) == [grant_r]
    assert widening([in_a], [on_r]) == widening([everywhere], [on_r]) == []
    # From one resource to its whole project widens; the other way narrows.
    assert widening([on_r], [in_a]) == [Grant("compute:instances:read", "a")]
    assert widening([on_r], []) == []


def test_lifting_a_deny_on_a_resource_widens_on_that_resource() -> None:
    kinds = [("r", "compute:instances", "a"), ("z", "dns:zones", "a")]
    deny = _rule("deny", ("compute:instances:delete",), scope="resources", resources=kinds)
    assert widening([deny], []) == [Grant("compute:instances:delete", "a", "r")]
    in_a = _rule("deny", ("compute:instances:delete",), scope="projects", project_ids=["a"])
    assert widening([deny], [in_a]) == []
    assert widening([in_a], [deny]) == [Grant("compute:instances:delete", "a")]


# ------------------------------------------------------------------ the attacks


@pytest.fixture
def iam(org: Org) -> Membership:
    """The demo's iam@: IAMManager and AuditReader, not an owner."""
    membership = MembershipFactory(organization=org.organization)
    for name in ("IAMManager", "AuditReader"):
        policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name=name)
        membership.policy_attachments.create(policy=policy, organization=org.organization)
    return membership


@pytest.fixture
def iam_client(iam: Membership) -> Client:
    client = Client()
    client.force_login(iam.user)
    return client


def _version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def _refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="authz.delegation.refused"))


def test_an_iam_manager_cannot_attach_everything_to_themself(
    org: Org, iam: Membership, iam_client: Client
) -> None:
    everything = PolicyFactory(organization=org.organization, name="everything")
    RuleFactory(policy=everything, actions=["*"], scope="organization")
    attach = reverse("policies:principal_policy_attach", args=[org.organization.pk, "user", iam.pk])
    version = _version(org)

    response = iam_client.post(attach, {"policy": str(everything.pk)})

    body = response.content.decode()
    assert "You can only grant what you hold yourself" in body
    assert "billing:invoices:read" in body and "organization:security:update" in body
    assert not PolicyAttachment.objects.filter(membership=iam, policy=everything).exists()
    assert _version(org) == version
    (refusal,) = _refusals()
    assert refusal.actor_id == str(iam.user_id) and refusal.result == "denied"
    assert "billing:invoices:read" in refusal.data["exceeding"]
    # Still refused the billing pages.
    assert (
        iam_client.get(
            reverse("organizations:invoice_list", args=[org.organization.pk])
        ).status_code
        == 403
    )


def test_an_iam_manager_cannot_take_billing_access_nor_join_the_finance_group(
    org: Org, iam: Membership, iam_client: Client
) -> None:
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    with pytest.raises(DelegationRefused, match="billing:contact:update"):
        attachment_services.policy_attach(policy=billing, principal=iam, actor=iam.user)
    finance = GroupFactory(organization=org.organization, name="Finance")
    PolicyAttachment.objects.create(policy=billing, group=finance, organization=org.organization)
    members = reverse("organizations:group_members", args=[org.organization.pk, finance.pk])

    response = iam_client.post(members, {"add_user": iam.pk}, headers=HTMX)

    assert "You can only grant what you hold yourself" in response.content.decode()
    assert not finance.members.filter(pk=iam.pk).exists()
    assert len(_refusals()) == 1


def test_an_allow_rule_beyond_the_authors_rights_is_refused_only_once_attached(
    org: Org, iam: Membership
) -> None:
    policy = PolicyFactory(organization=org.organization, name="mine")
    # Attached to nobody: it grants nothing to anyone yet.
    rule_services.rule_add(
        policy=policy, effect="allow", actions=["billing:*"], scope="organization", actor=iam.user
    )
    PolicyAttachment.objects.create(policy=policy, membership=iam, organization=org.organization)
    with pytest.raises(DelegationRefused):
        rule_services.rule_add(
            policy=policy,
            effect="allow",
            actions=["organization:security:update"],
            scope="organization",
            actor=iam.user,
        )
    rule = policy.rules.get()
    narrow = Rule.objects.create(
        policy=policy, position=2, effect="allow", actions=["iam:users:list"], scope="organization"
    )
    with pytest.raises(DelegationRefused):
        rule_services.rule_update(
            rule=narrow, effect="allow", actions=["*"], scope="organization", actor=iam.user
        )
    # Within their rights, and narrowing, both pass.
    rule_services.rule_update(
        rule=narrow, effect="allow", actions=["iam:*"], scope="organization", actor=iam.user
    )
    rule_services.rule_remove(rule=rule, actor=iam.user)
    assert list(policy.rules.values_list("actions", flat=True)) == [["iam:*"]]


def test_removing_a_deny_that_holds_back_more_than_the_author_holds_is_refused(
    org: Org, iam: Membership
) -> None:
    no_billing = PolicyFactory(organization=org.organization, name="no-billing")
    deny = RuleFactory(policy=no_billing, effect="deny", actions=["billing:*"])
    PolicyAttachment.objects.create(
        policy=no_billing, membership=org.billing, organization=org.organization
    )
    with pytest.raises(DelegationRefused):
        attachment_services.policy_detach(policy=no_billing, principal=org.billing, actor=iam.user)
    with pytest.raises(DelegationRefused):
        rule_services.rule_remove(rule=deny, actor=iam.user)
    assert PolicyAttachment.objects.filter(policy=no_billing).exists()
    # An owner may.
    attachment_services.policy_detach(
        policy=no_billing, principal=org.billing, actor=org.owner.user
    )


def test_a_key_for_an_application_needs_what_the_application_holds(
    org: Org, iam: Membership
) -> None:
    application = ApplicationFactory(organization=org.organization, name="billing-bot")
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    PolicyAttachment.objects.create(
        policy=billing, application=application, organization=org.organization
    )
    with pytest.raises(DelegationRefused, match="a key of application billing-bot"):
        api_key_services.api_key_create(
            organization=org.organization, creator=iam, bearer=application
        )
    reader = ApplicationFactory(organization=org.organization, name="iam-reader")
    iam_read = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMReadOnly")
    PolicyAttachment.objects.create(
        policy=iam_read, application=reader, organization=org.organization
    )
    created = api_key_services.api_key_create(
        organization=org.organization, creator=iam, bearer=reader
    )
    assert created.secret


def test_within_their_rights_an_iam_manager_grants_freely(org: Org, iam: Membership) -> None:
    iam_read = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMReadOnly")
    assert attachment_services.policy_attach(policy=iam_read, principal=org.tech, actor=iam.user)
    group = GroupFactory(organization=org.organization)
    PolicyAttachment.objects.create(policy=iam_read, group=group, organization=org.organization)
    assert group_services.group_add_member(group=group, membership=org.billing, actor=iam.user)
    assert not _refusals()


def test_owners_are_not_limited(org: Org) -> None:
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    assert attachment_services.policy_attach(
        policy=billing, principal=org.tech, actor=org.owner.user
    )


def test_the_ceiling_decides_for_the_authors_current_request(org: Org) -> None:
    """Holding billing only from the office network, one grants it only from there."""
    author = MembershipFactory(organization=org.organization)
    office = PolicyFactory(organization=org.organization, name="office")
    RuleFactory(
        policy=office,
        actions=["IAMManager", "BillingReadOnly"],
        condition='ip_in_range(request.ip, "10.0.0.0/8")',
    )
    PolicyAttachment.objects.create(policy=office, membership=author, organization=org.organization)
    readers = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingReadOnly")
    attach = reverse(
        "policies:principal_policy_attach", args=[org.organization.pk, "user", org.tech.pk]
    )
    client = Client()
    client.force_login(author.user)

    client.post(attach, {"policy": str(readers.pk)}, REMOTE_ADDR="10.9.9.9")

    assert PolicyAttachment.objects.filter(policy=readers, membership=org.tech).exists()


def test_project_grants_need_the_project_or_all_projects(org: Org) -> None:
    web, db = (
        ProjectFactory(organization=org.organization),
        ProjectFactory(organization=org.organization),
    )
    author = MembershipFactory(organization=org.organization)
    holds = PolicyFactory(organization=org.organization, name="web-admin")
    RuleFactory(policy=holds, actions=["IAMManager"])
    web_rule = RuleFactory(policy=holds, actions=["compute:*"], scope="projects")
    web_rule.projects.set([web])
    PolicyAttachment.objects.create(policy=holds, membership=author, organization=org.organization)
    target = PolicyFactory(organization=org.organization, name="target")
    PolicyAttachment.objects.create(
        policy=target, membership=org.tech, organization=org.organization
    )

    def list_instances(scope: str, *projects: object) -> None:
        rule_services.rule_add(
            policy=target,
            effect="allow",
            actions=["compute:instances:list"],
            scope=scope,
            projects=list(projects),
            actor=author.user,
        )

    with pytest.raises(DelegationRefused, match="in all projects"):
        list_instances("all_projects")
    with pytest.raises(DelegationRefused, match=f"in project {db.name}"):
        list_instances("projects", db)
    list_instances("projects", web)


# -------------------------------------------------------------------- guardrails


def test_guardrails_are_not_edited_by_those_they_bind(
    org: Org, iam: Membership, iam_client: Client
) -> None:
    guardrail = guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=["billing:*"],
        scope="organization",
        actor=org.owner.user,
    )
    policy = guardrail.policy
    add = reverse("policies:guardrail_rule_add", args=[org.organization.pk])
    edit = reverse("policies:rule_update", args=[org.organization.pk, policy.pk, guardrail.pk])
    move = reverse("policies:rule_move", args=[org.organization.pk, policy.pk, guardrail.pk])
    remove = reverse("policies:rule_remove", args=[org.organization.pk, policy.pk, guardrail.pk])
    data = {"effect": "deny", "actions": "iam:users:list", "scope": "organization"}

    for url, payload in ((add, data), (edit, data), (move, {"direction": "down"}), (remove, {})):
        response = iam_client.post(url, payload)
        assert response.status_code == 403, url
        assert "iam:guardrails:update" in response.content.decode()
    assert list(policy.rules.values_list("actions", flat=True)) == [["billing:*"]]
    page = iam_client.get(reverse("policies:guardrails", args=[org.organization.pk]))
    assert page.status_code == 200 and "Add a rule" not in page.content.decode()
    # The services refuse it too, whoever calls them.
    with pytest.raises(ValidationError, match="Only owners"):
        rule_services.rule_remove(rule=guardrail, actor=iam.user)
    with pytest.raises(ValidationError, match="Only owners"):
        guardrail_services.guardrail_rule_add(
            organization=org.organization,
            effect="deny",
            actions=["iam:users:list"],
            scope="organization",
            actor=iam.user,
        )


def test_a_deny_wildcard_covers_the_guardrail_permission(org: Org) -> None:
    deny = _rule("deny", ("iam:*",))
    allow = _rule("allow", ("iam:*",))
    assert "iam:guardrails:update" in deny.actions
    assert "iam:guardrails:update" not in allow.actions


def test_the_refusal_is_recorded_with_the_request(
    org: Org, iam: Membership, iam_client: Client
) -> None:
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    attach = reverse("policies:policy_attach", args=[org.organization.pk, billing.pk])
    iam_client.post(attach, {"membership": str(iam.pk)}, REMOTE_ADDR="10.1.1.1")
    (refusal,) = _refusals()
    assert refusal.ip == "10.1.1.1"
    assert refusal.occurred_at > dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


# ------------------------------------------------------------------- newcomers


def test_invitations_give_only_what_their_author_holds(org: Org, iam: Membership) -> None:
    with pytest.raises(DelegationRefused, match="billing:contact:update"):
        invitation_services.invitations_create(
            organization=org.organization, actor=iam, emails=["new@example.com"], role="billing"
        )
    finance = GroupFactory(organization=org.organization, name="Finance")
    billing = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess")
    PolicyAttachment.objects.create(policy=billing, group=finance, organization=org.organization)
    with pytest.raises(DelegationRefused):
        invitation_services.invitations_create(
            organization=org.organization, actor=iam, emails=["new@example.com"], groups=[finance]
        )
    with pytest.raises(DelegationRefused):
        people_services.member_create(
            organization=org.organization,
            actor=iam.user,
            email="member@example.com",
            full_name="M",
            groups=[finance],
        )
    assert not org.organization.invitations.exists()
    # Within their rights: an invitation with no role, or by an owner with any.
    assert invitation_services.invitations_create(
        organization=org.organization, actor=iam, emails=["new@example.com"]
    )
    assert invitation_services.invitations_create(
        organization=org.organization, actor=org.owner, emails=["b@example.com"], role="billing"
    )


def test_reactivating_someone_needs_what_they_will_hold_again(org: Org, iam: Membership) -> None:
    people_services.membership_suspend(membership=org.billing, actor=org.owner)
    with pytest.raises(DelegationRefused, match="billing"):
        people_services.membership_reactivate(membership=org.billing, actor=iam)
    people_services.membership_suspend(membership=org.readonly, actor=iam)
    # ReadOnlyAccess reaches beyond IAM (projects): an IAM manager cannot restore it either.
    with pytest.raises(DelegationRefused):
        people_services.membership_reactivate(membership=org.readonly, actor=iam)
    people_services.membership_reactivate(membership=org.billing, actor=org.owner)
