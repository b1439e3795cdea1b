"""Change previews of the console's other changes that can alter access (policies.preview
through policies.previewed): group membership (from the group's page and the user's),
deleting a group or a policy, suspending someone, and the organization's first
guardrail rule. A preview names who gains or loses what and saves nothing; a confirmed
change records the diff in its audit event; a stale confirmation is shown again."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Group, Membership, Organization
from policies.models import Policy, PolicyAttachment, Rule
from policies.services import attachments as attachment_services
from policies.services import guardrails as guardrail_services
from policies.services import rules as rule_services
from tests.conftest import Org
from tests.factories import ApplicationFactory, GroupFactory, MembershipFactory, PolicyFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
READ = "billing:invoices:read"


@pytest.fixture
def finance(org: Org) -> tuple[Policy, Group]:
    """Policy Readers (allow `READ` in the organization) attached to group Finance, whose
    member is tech (billing holds `READ` already, through BillingAccess)."""
    policy = PolicyFactory(organization=org.organization, name="Readers")
    rule_services.rule_add(
        policy=policy, effect="allow", actions=[READ], scope="organization", actor=org.owner.user
    )
    group = GroupFactory(organization=org.organization, name="Finance")
    group.members.add(org.tech)
    attachment_services.policy_attach(policy=policy, principal=group, actor=org.owner.user)
    return policy, group


def _state(org: Org) -> tuple[object, ...]:
    """Everything a preview must leave as it was."""
    organization = Organization.objects.get(pk=org.organization.pk)
    return (
        organization.authz_version,
        AuditEvent.objects.count(),
        sorted(Group.objects.values_list("pk", flat=True)),
        sorted(Group.members.through.objects.values_list("group_id", "membership_id")),
        sorted(Group.applications.through.objects.values_list("group_id", "application_id")),
        Policy.objects.count(),
        PolicyAttachment.objects.count(),
        sorted(Membership.objects.values_list("pk", "status")),
    )


def _digest(response: HttpResponse) -> str:
    found = re.search(r'name="preview_digest" value="([0-9a-f]+)"', response.content.decode())
    assert found, response.content.decode()
    return found[1]


def _org_url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def _event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("occurred_at")


def _previewed(
    client: Client, url: str, data: dict[str, str], org: Org
) -> tuple[str, HttpResponse]:
    """Preview the change (HTMX): the body, nothing saved."""
    before = _state(org)
    shown = client.post(url, {**data, "preview": "1"}, headers=HTMX)
    assert shown.status_code == 200
    assert _state(org) == before
    body = shown.content.decode()
    assert "Confirm and save" in body
    return body, shown


# ------------------------------------------------------------------ group membership


def test_previewing_adding_a_user_to_a_group_names_them_and_saves_nothing(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    client = org.client_for("owner")
    url = _org_url("group_members", org, group.pk)
    data = {"add_user": str(org.readonly.pk)}

    body, shown = _previewed(client, url, data, org)

    assert 'id="group-members"' in body
    assert f"Preview: add {org.readonly.user.email} to Finance" in body
    assert "+1 principal gains" in body and READ in body
    assert org.readonly.user.email in body and "through group Finance" in body
    # tech and billing hold it already; owners are never listed.
    assert org.owner.user.email not in body and org.billing.user.email not in body
    confirmed = client.post(url, {**data, "preview_digest": _digest(shown)})
    assert confirmed.status_code == 302
    assert group.members.filter(pk=org.readonly.pk).exists()
    event = _event("iam.group.member_added")
    assert event.data["preview"][READ] == {
        "gain": [org.readonly.user.email],
        "counts": {"gain": 1},
    }


def test_previewing_removing_a_member_names_who_loses(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    client = org.client_for("owner")
    url = _org_url("group_members", org, group.pk)
    data = {"remove_user": str(org.tech.pk)}

    body, shown = _previewed(client, url, data, org)

    assert f"Preview: remove {org.tech.user.email} from Finance" in body
    assert "1 principal loses" in body and org.tech.user.email in body
    assert "had it: " in body and "group Finance" in body
    # Confirmed over HTMX: the members card comes back.
    confirmed = client.post(url, {**data, "preview_digest": _digest(shown)}, headers=HTMX)
    assert confirmed.status_code == 200 and 'id="group-members"' in confirmed.content.decode()
    assert not group.members.filter(pk=org.tech.pk).exists()
    event = _event("iam.group.member_removed")
    assert event.data["preview"][READ]["lose"] == [org.tech.user.email]


def test_previewing_adding_an_application_to_a_group(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    app = ApplicationFactory(organization=org.organization, name="ci-bot")
    client = org.client_for("owner")
    url = _org_url("group_members", org, group.pk)
    data = {"add_application": str(app.pk)}

    body, shown = _previewed(client, url, data, org)

    assert "Preview: add ci-bot to Finance" in body
    assert "+1 principal gains" in body and "ci-bot" in body
    client.post(url, {**data, "preview_digest": _digest(shown)})
    assert group.applications.filter(pk=app.pk).exists()
    event = _event("iam.group.application_added")
    assert event.data["preview"][READ]["gain"] == ["ci-bot"]


def test_a_stale_membership_confirmation_is_shown_again_not_saved(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    client = org.client_for("owner")
    url = _org_url("group_members", org, group.pk)
    data = {"add_user": str(org.readonly.pk)}
    shown = client.post(url, {**data, "preview": "1"}, headers=HTMX)
    # Someone else adds readonly to another group with the same policy meanwhile.
    other = GroupFactory(organization=org.organization, name="Auditors")
    other.members.add(org.readonly)
    attachment_services.policy_attach(policy=finance[0], principal=other, actor=org.owner.user)
    before = _state(org)

    response = client.post(url, {**data, "preview_digest": _digest(shown)}, headers=HTMX)

    body = response.content.decode()
    assert "Access changed since your preview" in body and "Confirm and save" in body
    assert "No principal gains or loses access" in body
    assert _state(org) == before


def test_adding_a_member_without_preview_still_works(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    response = org.client_for("owner").post(
        _org_url("group_members", org, group.pk), {"add_user": str(org.readonly.pk)}
    )
    assert response.status_code == 302 and group.members.filter(pk=org.readonly.pk).exists()
    assert "preview" not in _event("iam.group.member_added").data


def test_the_group_page_offers_preview_beside_add_and_remove(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    ApplicationFactory(organization=org.organization)
    page = org.client_for("owner").get(_org_url("group_detail", org, group.pk), {"q": "@"})
    body = page.content.decode()
    assert f'Preview<span class="visually-hidden"> removing {org.tech.user.email}' in body
    assert 'Preview<span class="visually-hidden"> adding ' in body  # a candidate user
    assert 'Preview<span class="visually-hidden"> adding the application' in body


def test_previewing_a_join_from_the_users_page(org: Org, finance: tuple[Policy, Group]) -> None:
    _, group = finance
    client = org.client_for("owner")
    url = _org_url("user_groups", org, org.readonly.pk)

    body, shown = _previewed(client, url, {"add": str(group.pk)}, org)

    assert 'id="user-groups"' in body and "+1 principal gains" in body
    assert org.readonly.user.email in body
    page = client.get(_org_url("user_detail", org, org.tech.pk)).content.decode()
    assert 'Preview<span class="visually-hidden"> removing from Finance' in page
    client.post(url, {"add": str(group.pk), "preview_digest": _digest(shown)})
    assert group.members.filter(pk=org.readonly.pk).exists()
    assert _event("iam.group.member_added").data["preview"][READ]["gain"] == [
        org.readonly.user.email
    ]


def test_previewing_an_applications_groups_from_its_page(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    app = ApplicationFactory(organization=org.organization, name="ci-bot")
    client = org.client_for("owner")
    add = _org_url("application_group_add", org, app.pk)

    body, shown = _previewed(client, add, {"group": str(group.pk)}, org)

    assert 'id="application-groups"' in body and "Preview: add ci-bot to Finance" in body
    assert "+1 principal gains" in body
    page = client.get(_org_url("application_detail", org, app.pk)).content.decode()
    assert 'Preview<span class="visually-hidden"> adding to the group' in page
    client.post(add, {"group": str(group.pk), "preview_digest": _digest(shown)}, headers=HTMX)
    assert group.applications.filter(pk=app.pk).exists()
    assert _event("iam.group.application_added").data["preview"][READ]["gain"] == ["ci-bot"]

    remove = _org_url("application_group_remove", org, app.pk, group.pk)
    body, shown = _previewed(client, remove, {}, org)
    assert "Preview: remove ci-bot from Finance" in body and "1 principal loses" in body
    confirmed = client.post(remove, {"preview_digest": _digest(shown)})
    assert confirmed.status_code == 302 and not group.applications.filter(pk=app.pk).exists()
    assert _event("iam.group.application_removed").data["preview"][READ]["lose"] == ["ci-bot"]


# --------------------------------------------------------------------------- deletes


def test_previewing_a_group_deletion_names_its_members_as_losing(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    client = org.client_for("owner")
    url = _org_url("group_delete", org, group.pk)
    page = client.get(url).content.decode()
    assert 'id="group-delete"' in page and 'name="preview" value="1"' in page

    body, shown = _previewed(client, url, {"confirm": "Finance"}, org)

    assert 'id="group-delete"' in body and "Preview: delete group Finance" in body
    assert "1 principal loses" in body and org.tech.user.email in body
    assert org.owner.user.email not in body
    confirmed = client.post(url, {"confirm": "Finance", "preview_digest": _digest(shown)})
    assert confirmed.status_code == 302 and not Group.objects.filter(pk=group.pk).exists()
    event = _event("iam.group.deleted")
    assert event.data["members"] == 1
    assert event.data["preview"][READ]["lose"] == [org.tech.user.email]


def test_a_group_deletion_preview_still_asks_for_the_name(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    _, group = finance
    client = org.client_for("owner")
    url = _org_url("group_delete", org, group.pk)
    before = _state(org)

    refused = client.post(url, {"confirm": "nope", "preview": "1"}, headers=HTMX)

    body = refused.content.decode()
    assert refused.status_code == 200 and 'id="group-delete"' in body
    assert "Type the group name exactly" in body and "<html" not in body
    assert _state(org) == before


def test_previewing_a_policy_deletion_names_everyone_it_reaches(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    attachment_services.policy_attach(policy=policy, principal=org.readonly, actor=org.owner.user)
    client = org.client_for("owner")
    url = reverse("policies:policy_delete", args=[org.organization.pk, policy.pk])
    page = client.get(url).content.decode()
    assert 'id="policy-delete"' in page and 'name="preview" value="1"' in page

    body, shown = _previewed(client, url, {}, org)

    assert 'id="policy-delete"' in body and "Preview: delete policy Readers" in body
    assert "2 principals lose" in body
    assert org.tech.user.email in body and org.readonly.user.email in body
    stale = client.post(url, {"preview_digest": "0" * 32}, headers=HTMX)
    assert "Access changed since your preview" in stale.content.decode()
    assert Policy.objects.filter(pk=policy.pk).exists()
    confirmed = client.post(url, {"preview_digest": _digest(shown)}, headers=HTMX)
    assert confirmed.headers["HX-Redirect"] == reverse(
        "policies:policy_list", args=[org.organization.pk]
    )
    assert not Policy.objects.filter(pk=policy.pk).exists()
    event = _event("iam.policy.deleted")
    assert event.data["preview"][READ]["lose"] == sorted(
        [org.tech.user.email, org.readonly.user.email]
    )
    assert event.data["before"]["name"] == "Readers"


def test_a_plain_post_preview_of_a_deletion_is_a_page(
    org: Org, finance: tuple[Policy, Group]
) -> None:
    policy, _ = finance
    url = reverse("policies:policy_delete", args=[org.organization.pk, policy.pk])
    response = org.client_for("owner").post(url, {"preview": "1"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body and "Confirm and save" in body
    assert Policy.objects.filter(pk=policy.pk).exists()


# ------------------------------------------------------------------------ suspension


def test_previewing_a_suspension_names_what_the_person_loses(org: Org) -> None:
    client = org.client_for("owner")
    url = _org_url("user_suspend", org, org.billing.pk)
    page = client.get(_org_url("user_detail", org, org.billing.pk)).content.decode()
    assert 'id="user-suspend"' in page and "Preview<span" in page

    body, shown = _previewed(client, url, {}, org)

    assert 'id="user-suspend"' in body and f"Preview: suspend {org.billing.user.email}" in body
    # BillingAccess: billing alone loses its billing actions; the owner keeps everything.
    assert "1 principal loses" in body and READ in body
    assert org.billing.user.email in body and org.owner.user.email not in body
    stale = client.post(url, {"preview_digest": "0" * 32})
    assert "Access changed since your preview" in stale.content.decode()
    assert Membership.objects.get(pk=org.billing.pk).status == Membership.Status.ACTIVE
    confirmed = client.post(url, {"preview_digest": _digest(shown)}, headers=HTMX)
    assert confirmed.headers["HX-Redirect"] == _org_url("user_detail", org, org.billing.pk)
    assert Membership.objects.get(pk=org.billing.pk).status == Membership.Status.SUSPENDED
    event = _event("iam.user.suspended")
    assert event.data["preview"][READ]["lose"] == [org.billing.user.email]


def test_suspending_without_preview_still_works(org: Org) -> None:
    response = org.client_for("owner").post(_org_url("user_suspend", org, org.billing.pk))
    assert response.status_code == 302
    assert Membership.objects.get(pk=org.billing.pk).status == Membership.Status.SUSPENDED
    assert "preview" not in (_event("iam.user.suspended").data or {})


def test_a_refused_suspension_preview_saves_nothing(org: Org) -> None:
    client = org.client_for("owner")
    before = _state(org)
    response = client.post(_org_url("user_suspend", org, org.owner.pk), {"preview": "1"})
    assert response.status_code == 302
    assert _state(org) == before
    page = client.get(response.url).content.decode()
    assert "You cannot suspend yourself." in page


# ------------------------------------------------------------------------ guardrails


def test_the_first_guardrail_rule_records_its_confirmed_diff(org: Org) -> None:
    rule = guardrail_services.guardrail_rule_add(
        organization=org.organization,
        effect="deny",
        actions=[READ],
        scope="organization",
        actor=org.owner.user,
        preview={READ: {"lose": [org.billing.user.email], "counts": {"lose": 1}}},
    )
    assert rule.policy.kind == Policy.Kind.GUARDRAIL
    event = _event("iam.guardrail.updated")
    assert event.data["preview"][READ]["lose"] == [org.billing.user.email]


def test_confirming_the_first_guardrail_rule_from_the_page_records_its_diff(org: Org) -> None:
    client = org.client_for("owner")
    url = reverse("policies:guardrail_rule_add", args=[org.organization.pk])
    data = {"effect": "deny", "actions": READ, "scope": "organization"}
    shown = client.post(url, {**data, "preview": "1"}, headers=HTMX)
    assert not Rule.objects.filter(policy__kind=Policy.Kind.GUARDRAIL).exists()

    client.post(url, {**data, "preview_digest": _digest(shown)})

    assert Rule.objects.filter(policy__kind=Policy.Kind.GUARDRAIL).exists()
    event = _event("iam.guardrail.updated")
    assert event.data["preview"][READ]["lose"] == [org.billing.user.email]


# ------------------------------------------------------------------------------ scale


def _group_of(org: Org, finance: tuple[Policy, Group], size: int) -> None:
    group = finance[1]
    have = group.members.count()
    group.members.add(*MembershipFactory.create_batch(size - have, organization=org.organization))


CHANGES: dict[str, Callable[[Org, tuple[Policy, Group]], tuple[str, dict[str, str]]]] = {
    "add to group": lambda org, f: (
        _org_url("group_members", org, f[1].pk),
        {"add_user": str(org.readonly.pk)},
    ),
    "remove from group": lambda org, f: (
        _org_url("group_members", org, f[1].pk),
        {"remove_user": str(org.tech.pk)},
    ),
    "delete group": lambda org, f: (_org_url("group_delete", org, f[1].pk), {"confirm": "Finance"}),
    "delete policy": lambda org, f: (
        reverse("policies:policy_delete", args=[org.organization.pk, f[0].pk]),
        {},
    ),
    "suspend": lambda org, f: (_org_url("user_suspend", org, org.tech.pk), {}),
    "join from the user's page": lambda org, f: (
        _org_url("user_groups", org, org.readonly.pk),
        {"add": str(f[1].pk)},
    ),
    "join from the application's page": lambda org, f: (
        _org_url(
            "application_group_add", org, ApplicationFactory(organization=org.organization).pk
        ),
        {"group": str(f[1].pk)},
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_preview_costs_the_same_queries_with_3_or_30_principals(
    org: Org, finance: tuple[Policy, Group], change: str
) -> None:
    client = org.client_for("owner")
    url, data = CHANGES[change](org, finance)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.post(url, {**data, "preview": "1"}, headers=HTMX)
        assert response.status_code == 200 and "Confirm and save" in response.content.decode()
        return len(captured)

    _group_of(org, finance, 3)
    client.post(url, {**data, "preview": "1"}, headers=HTMX)  # sessions, caches warmed
    few = queries()
    _group_of(org, finance, 30)
    assert queries() == few
