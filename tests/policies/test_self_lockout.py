"""A change that would take from its author the very permission they used is refused
until they confirm it (design.md, Security settings)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Membership, Organization
from policies import authz
from policies.lockout import CONFIRM_FIELD
from policies.models import Policy, PolicyAttachment, Rule
from tests.conftest import Org
from tests.factories import GroupFactory, MembershipFactory, PolicyFactory, RuleFactory

pytestmark = pytest.mark.django_db

# The test client's requests come from 127.0.0.1: a guardrail allowing only the office
# network denies them.
OFFICE_ONLY = {
    "effect": "deny",
    "actions": "iam:*",
    "scope": "organization",
    "condition": '!ip_in_range(request.ip, "10.0.0.0/8")',
}


@pytest.fixture
def manager(org: Org) -> Membership:
    """An IAM manager who is not an owner: the guardrails apply to them. An owner also
    granted them the guardrails' own permission, by name."""
    membership = MembershipFactory(organization=org.organization)
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    membership.policy_attachments.create(policy=policy, organization=org.organization)
    editor = PolicyFactory(organization=org.organization, name="guardrail-editors")
    RuleFactory(policy=editor, actions=["iam:guardrails:update"], scope="organization")
    membership.policy_attachments.create(policy=editor, organization=org.organization)
    return membership


def _client(membership: Membership) -> Client:
    client = Client()
    client.force_login(membership.user)
    return client


def _version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def test_a_guardrail_that_would_deny_its_author_is_refused_until_confirmed(
    org: Org, manager: Membership
) -> None:
    client = _client(manager)
    add = reverse("policies:guardrail_rule_add", args=[org.organization.pk])
    version, events = _version(org), AuditEvent.objects.count()

    response = client.post(add, OFFICE_ONLY)

    assert response.status_code == 409
    body = response.content.decode()
    assert "This change would lock you out" in body and "Nothing was saved" in body
    assert "iam:guardrails:update" in body and "127.0.0.1" in body
    assert f'name="{CONFIRM_FIELD}" value="1"' in body
    assert 'name="condition" value="!ip_in_range(request.ip, &quot;10.0.0.0/8&quot;)"' in body
    # Rolled back: no rule, no event, no version bump, no success message.
    assert not Rule.objects.filter(policy__kind=Policy.Kind.GUARDRAIL).exists()
    assert (_version(org), AuditEvent.objects.count()) == (version, events)
    assert "Rule saved" not in body
    # Still allowed on the next request (nothing stale was cached for this version).
    guardrails = reverse("policies:guardrails", args=[org.organization.pk])
    assert client.get(guardrails).status_code == 200

    confirmed = client.post(add, {**OFFICE_ONLY, CONFIRM_FIELD: "1"})
    assert confirmed.status_code == 302
    assert Rule.objects.filter(policy__kind=Policy.Kind.GUARDRAIL).count() == 1
    assert AuditEvent.objects.count() > events
    assert client.get(guardrails).status_code == 403


def test_the_same_guardrail_from_the_office_network_passes_without_a_question(
    org: Org, manager: Membership
) -> None:
    add = reverse("policies:guardrail_rule_add", args=[org.organization.pk])
    response = _client(manager).post(add, OFFICE_ONLY, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    assert Rule.objects.filter(policy__kind=Policy.Kind.GUARDRAIL).count() == 1


def test_owners_are_never_asked(org: Org) -> None:
    add = reverse("policies:guardrail_rule_add", args=[org.organization.pk])
    response = org.client_for("owner").post(add, OFFICE_ONLY)
    assert response.status_code == 302


def test_detaching_your_own_iam_rights_asks_first_and_htmx_gets_the_question_in_place(
    org: Org, manager: Membership
) -> None:
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    detach = reverse(
        "policies:principal_policy_detach",
        args=[org.organization.pk, "user", manager.pk, policy.pk],
    )
    client = _client(manager)

    response = client.post(detach, {"next": "/"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Retarget"] == "#main" and response["HX-Reswap"] == "innerHTML"
    assert "<html" not in response.content.decode()
    assert "iam:policies:attach" in response.content.decode()
    assert PolicyAttachment.objects.filter(membership=manager, policy=policy).exists()

    client.post(detach, {"next": "/", CONFIRM_FIELD: "1"})
    assert not PolicyAttachment.objects.filter(membership=manager, policy=policy).exists()
    confirmed = AuditEvent.objects.get(action="authz.self_lockout.confirmed")
    assert confirmed.actor_id == str(manager.user_id)
    assert confirmed.data["action"] == "iam:policies:attach"
    assert confirmed.sequence == AuditEvent.objects.get(action="iam.policy.detached").sequence + 1


def test_detaching_someone_else_or_leaving_a_group_that_grants_nothing_is_not_questioned(
    org: Org, manager: Membership
) -> None:
    client = _client(manager)
    tech_access = Policy.objects.get(kind=Policy.Kind.MANAGED, name="TechAccess")
    detach = reverse(
        "policies:principal_policy_detach",
        args=[org.organization.pk, "user", org.tech.pk, tech_access.pk],
    )
    assert client.post(detach, {"next": "/"}).status_code == 302
    group = GroupFactory(organization=org.organization)
    group.members.add(manager)
    members = reverse("organizations:group_members", args=[org.organization.pk, group.pk])
    assert client.post(members, {"remove_user": manager.pk}).status_code == 302
    assert not group.members.filter(pk=manager.pk).exists()


def test_leaving_the_group_that_gives_you_iam_rights_asks_first(org: Org) -> None:
    manager = MembershipFactory(organization=org.organization)
    group = GroupFactory(organization=org.organization, name="IAM admins")
    group.members.add(manager)
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    PolicyAttachment.objects.create(policy=policy, group=group, organization=org.organization)
    members = reverse("organizations:group_members", args=[org.organization.pk, group.pk])
    client = _client(manager)
    # Whatever was compiled for this version before the rollback is forgotten with it.
    stale = f"{org.organization.pk}:{_version(org)}:rules:compiled-inside-the-transaction"
    authz._cache[stale] = authz.CompiledRuleSet.empty()

    response = client.post(members, {"remove_user": manager.pk})

    assert response.status_code == 409
    assert "iam:groups:update" in response.content.decode()
    assert group.members.filter(pk=manager.pk).exists()
    assert stale not in authz._cache
    group_page = reverse("organizations:group_detail", args=[org.organization.pk, group.pk])
    assert client.get(group_page).status_code == 200
