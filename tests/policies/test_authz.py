from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from organizations.services.organizations import organization_bump_authz_version
from policies import authz
from policies.evaluator import RequestFacts, decide
from policies.selectors.rules import compile_rules_for
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
)

FACTS = RequestFacts(ip="10.0.0.1", user_agent="t", time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

pytestmark = pytest.mark.django_db


def test_a_revoked_permission_is_denied_on_the_next_request_with_a_warm_cache(org: Org) -> None:
    client = org.client_for("tech")
    url = reverse("organizations:project_list", args=[org.organization.pk])
    assert client.get(url).status_code == 200  # compiles and caches the tech's rules

    org.tech.policy_attachments.all().delete()
    # Without the version bump the warm cache still answers from the old rules: this is
    # what makes the bump, done by every write service, necessary.
    assert client.get(url).status_code == 200
    organization_bump_authz_version(organization=org.organization)
    assert client.get(url).status_code == 403


def test_compiled_rules_are_reused_until_the_version_moves(
    org: Org, django_assert_num_queries
) -> None:
    org.tech.refresh_from_db()
    first = authz.rules_for(org.tech)
    with django_assert_num_queries(0):
        assert authz.rules_for(org.tech) is first
    organization_bump_authz_version(organization=org.organization)
    org.tech.organization.refresh_from_db()
    assert authz.rules_for(org.tech) is not first


def test_owners_are_decided_without_compiling_rules(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    url = reverse("organizations:project_list", args=[org.organization.pk])
    client.get(url)
    with django_assert_max_num_queries(6):
        assert client.get(url).status_code == 200


def test_policies_attached_to_a_group_apply_to_its_members_and_say_so(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Devs")
    group.members.add(org.readonly)
    policy = PolicyFactory(organization=org.organization, name="Billing-readers")
    RuleFactory(policy=policy, actions=["billing:invoices:list"], scope="organization")
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    rules = compile_rules_for(org.readonly)
    allowed = decide(
        principal=authz.principal_of(org.readonly),
        rules=rules,
        action="billing:invoices:list",
        project_id=None,
        request=FACTS,
    )
    assert allowed.allowed
    assert allowed.explanation == "allowed by rule 1 of policy Billing-readers through group Devs"
    # Not a member: nothing.
    assert not any(rule.policy_name == "Billing-readers" for rule in compile_rules_for(org.tech))


def test_an_application_gets_its_own_and_its_groups_policies(
    org: Org, django_assert_max_num_queries
) -> None:
    app = ApplicationFactory(organization=org.organization)
    group = GroupFactory(organization=org.organization)
    group.applications.add(app)
    direct = PolicyFactory(organization=org.organization, name="direct")
    RuleFactory(policy=direct, actions=["projects:projects:list"])
    via = PolicyFactory(organization=org.organization, name="via")
    RuleFactory(policy=via, actions=["billing:invoices:list"])
    PolicyAttachmentFactory(
        policy=direct, membership=None, application=app, organization=org.organization
    )
    PolicyAttachmentFactory(policy=via, membership=None, group=group, organization=org.organization)
    with django_assert_max_num_queries(2):
        rules = compile_rules_for(app)
    labels = sorted(rule.label for rule in rules)
    assert labels == ["rule 1 of policy direct", "rule 1 of policy via through group " + group.name]
    principal = authz.principal_of(app)
    assert principal.type == "application" and principal.id == str(app.pk)


def test_compiling_reads_every_path_projects_and_the_guardrail_in_two_queries(
    org: Org, django_assert_num_queries
) -> None:
    organization = org.organization
    staging, production = (ProjectFactory(organization=organization) for _ in range(2))
    group = GroupFactory(organization=organization, name="Developers")
    group.members.add(org.tech)
    shared = PolicyFactory(organization=organization, name="shared")
    RuleFactory(policy=shared, actions=["projects:projects:read"], scope="projects").projects.set(
        [staging, production]
    )
    RuleFactory(policy=shared, actions=["billing:invoices:list"])
    PolicyAttachmentFactory(policy=shared, membership=None, group=group, organization=organization)
    PolicyAttachmentFactory(policy=shared, membership=org.tech, organization=organization)
    guardrail = PolicyFactory(organization=organization, name="guardrails", kind="guardrail")
    RuleFactory(policy=guardrail, effect="deny", actions=["iam:users:delete"])

    with django_assert_num_queries(2):
        rules = list(compile_rules_for(org.tech))

    mine = [rule for rule in rules if rule.policy_name in ("shared", "guardrails")]
    assert [(rule.policy_name, rule.rule_index) for rule in mine] == [
        ("guardrails", 1),
        ("shared", 1),
        ("shared", 2),
    ]
    assert mine[0].is_guardrail and mine[0].direct
    assert mine[1].scope == frozenset({str(staging.pk), str(production.pk)})
    assert mine[1].groups == ("Developers",) and mine[1].direct


def test_a_member_nothing_is_granted_to_is_told_so_and_how_to_leave(org: Org) -> None:
    newcomer = MembershipFactory(organization=org.organization)
    client = Client()
    client.force_login(newcomer.user)
    dashboard = reverse("organizations:dashboard", args=[org.organization.pk])
    response = client.get(dashboard)
    body = response.content.decode()
    assert response.status_code == 403
    assert "You have no permissions in Acme yet" in body
    assert "organization:organization:read" in body
    assert reverse("organizations:leave", args=[org.organization.pk]) in body
    # Someone with some permission gets the usual page naming the missing one.
    billing = org.client_for("billing").get(
        reverse("organizations:user_list", args=[org.organization.pk])
    )
    assert billing.status_code == 403
    assert "You do not have permission to do this" in billing.content.decode()


# ------------------------------------------------------------------- the 403 page


def _users_page(org: Org) -> str:
    return reverse("organizations:user_list", args=[org.organization.pk])


def _attach(membership, *, kind: str = "custom", **rule: object) -> None:
    policy = PolicyFactory(organization=membership.organization, name="Office", kind=kind)
    RuleFactory(policy=policy, position=1, **rule)
    if kind != "guardrail":  # guardrails apply to every non-owner without attachment
        PolicyAttachmentFactory(policy=policy, membership=membership)


def test_a_failed_ip_condition_is_explained_with_the_request_address(org: Org) -> None:
    member = MembershipFactory(organization=org.organization)
    _attach(member, actions=["iam:users:list"], condition='ip_in_range(request.ip, "10.0.0.0/8")')
    client = Client()
    client.force_login(member.user)
    assert client.get(_users_page(org), REMOTE_ADDR="10.1.2.3").status_code == 200

    response = client.get(_users_page(org), REMOTE_ADDR="203.0.113.5")
    body = response.content.decode()
    assert response.status_code == 403
    assert "Rule 1 of policy Office grants it, but only when its condition holds" in body
    assert "your address 203.0.113.5 is not in 10.0.0.0/8" in body
    assert "connect from an address in 10.0.0.0/8, such as the office network" in body
    assert "attach a policy" not in body


def test_a_failed_mfa_condition_says_so_and_links_to_two_step_verification(org: Org) -> None:
    member = MembershipFactory(organization=org.organization)
    _attach(member, actions=["iam:users:list"], condition="request.mfa")
    client = Client()
    client.force_login(member.user)
    body = client.get(_users_page(org)).content.decode()
    assert "you signed in without two-step verification" in body
    assert reverse("accounts:mfa") in body


def test_another_condition_shows_its_source_and_the_request_values(org: Org) -> None:
    member = MembershipFactory(organization=org.organization)
    _attach(member, actions=["iam:users:list"], condition='request.user_agent.matches("^corp")')
    client = Client(HTTP_USER_AGENT="Mozilla/5.0")
    client.force_login(member.user)
    body = client.get(_users_page(org)).content.decode()
    assert "request.user_agent.matches(&quot;^corp&quot;)" in body
    assert "<code>request.user_agent</code> = &quot;Mozilla/5.0&quot;" in body


def test_a_guardrail_denial_asks_an_owner_and_says_why_it_applies(org: Org) -> None:
    _attach(
        org.readonly,
        kind="guardrail",
        effect="deny",
        actions=["iam:*"],
        condition='!ip_in_range(request.ip, "10.0.0.0/8")',
    )
    client = org.client_for("readonly")
    assert client.get(_users_page(org), REMOTE_ADDR="10.1.2.3").status_code == 200
    response = client.get(_users_page(org), REMOTE_ADDR="203.0.113.5")
    body = response.content.decode()
    assert response.status_code == 403
    assert "A guardrail of the organization refuses it: guardrail rule 1 of policy Office" in body
    assert "because your address 203.0.113.5 is not in 10.0.0.0/8" in body
    assert "Ask an owner of the organization" in body
    assert "attach a policy" not in body
    assert "IAM manager" not in body


def test_a_plain_deny_asks_an_owner(org: Org) -> None:
    _attach(org.readonly, effect="deny", actions=["iam:users:list"])
    response = org.client_for("readonly").get(_users_page(org))
    body = response.content.decode()
    assert response.status_code == 403
    assert "A deny rule refuses it: rule 1 of policy Office" in body
    assert "Ask an owner of the organization" in body
    assert "attach a policy" not in body


def test_no_policy_asks_for_a_policy_granting_the_permission(org: Org) -> None:
    response = org.client_for("billing").get(_users_page(org))
    body = response.content.decode()
    assert response.status_code == 403
    assert "Denied: no policy grants iam:users:list." in body
    assert (
        "Ask an owner or an IAM manager of the organization for a policy granting "
        "<code>iam:users:list</code>"
    ) in body
    assert "attach a policy" not in body


def test_a_suspended_member_is_told_so(org: Org) -> None:
    org.readonly.status = "suspended"
    org.readonly.save()
    response = org.client_for("readonly").get(_users_page(org))
    body = response.content.decode()
    assert response.status_code == 403
    assert "Your membership is suspended" in body


# ------------------------------------------------------------- shared compiled policies


def _group_with(org: Org, *policies: object, members: int = 2) -> list[object]:
    group = GroupFactory(organization=org.organization)
    for policy in policies:
        PolicyAttachmentFactory(
            policy=policy, membership=None, group=group, organization=org.organization
        )
    people = [MembershipFactory(organization=org.organization) for _ in range(members)]
    group.members.add(*people)
    return people


def test_principals_holding_the_same_policies_the_same_way_share_one_rule_set(
    org: Org, django_assert_num_queries
) -> None:
    policy = PolicyFactory(organization=org.organization, name="readers")
    RuleFactory(policy=policy, actions=["projects:projects:list"])
    first, second = _group_with(org, policy)
    rules = authz.rules_for(first)
    # The second needs only its paths read: the set of the same paths is composed already.
    with django_assert_num_queries(1):
        assert authz.rules_for(second) is rules
    assert [r.label for r in rules] == [r.label for r in compile_rules_for(first)]


def test_a_policy_is_compiled_once_for_every_set_holding_it_the_same_way(
    org: Org, django_assert_num_queries
) -> None:
    shared = PolicyFactory(organization=org.organization, name="shared")
    RuleFactory(policy=shared, actions=["projects:projects:list"])
    extra = PolicyFactory(organization=org.organization, name="extra")
    RuleFactory(policy=extra, actions=["billing:invoices:list"])
    only_shared, both = (MembershipFactory(organization=org.organization) for _ in range(2))
    for membership, policies in ((only_shared, [shared]), (both, [shared, extra])):
        for policy in policies:
            PolicyAttachmentFactory(
                policy=policy, membership=membership, organization=org.organization
            )
    theirs = {rule.policy_name: rule for rule in authz.rules_for(only_shared)}
    with django_assert_num_queries(2):  # its paths, then the one policy not compiled yet
        rules = authz.rules_for(both)
    mine = {rule.policy_name: rule for rule in rules}
    assert mine["shared"] is theirs["shared"]
    assert [r.label for r in rules] == [r.label for r in compile_rules_for(both)]


def test_a_new_version_drops_the_older_ones(org: Org) -> None:
    authz.rules_for(org.tech)
    old = f"{org.organization.pk}:{org.organization.authz_version}:"
    assert any(key.startswith(old) for key in authz._cache)
    organization_bump_authz_version(organization=org.organization)
    org.tech.organization.refresh_from_db()
    authz.rules_for(org.tech)
    assert not any(key.startswith(old) for key in authz._cache)


def test_a_request_that_read_an_older_version_does_not_store_it(org: Org) -> None:
    stale_version = org.organization.authz_version
    organization_bump_authz_version(organization=org.organization)
    org.tech.organization.refresh_from_db()
    authz.rules_for(org.tech)  # the new version seen first
    org.tech.organization.authz_version = stale_version
    authz.rules_for(org.tech)  # answered, not remembered
    assert not any(
        key.startswith(f"{org.organization.pk}:{stale_version}:") for key in authz._cache
    )
