"""Search pickers (iamportal.widgets.SearchPick, organizations.views.pickers): pages bounded
by what they show, not by the organization; endpoints bounded, scoped and guarded; the
pickers still post and validate."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from iamportal.widgets import PICK_MATCHES
from organizations.models import APIKey, Group, Invitation
from policies.models import PolicyAttachment
from tests.conftest import Org, otp_verify
from tests.factories import (
    APIKeyFactory,
    ApplicationFactory,
    AuditEventFactory,
    GroupFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyFactory,
    ProjectFactory,
)

HTMX = {"HX-Request": "true"}


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def _values(body: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]+)"', body)


# --- the endpoints


def test_endpoint_answers_at_most_a_page_of_the_organizations_rows(
    org: Org, owner_client: Client
) -> None:
    mine = GroupFactory.create_batch(PICK_MATCHES + 5, organization=org.organization)
    foreign = GroupFactory(organization=OrganizationFactory(), name="group-foreign")
    response = owner_client.get(
        _url("pick_invitation_groups", org),
        {"name": "groups", "id": "id_groups", "type": "checkbox", "groups_q": "group"},
        headers=HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    found = _values(body, "groups")
    assert len(found) == PICK_MATCHES
    assert set(found) <= {str(group.pk) for group in mine}
    assert str(foreign.pk) not in body
    assert 'type="checkbox"' in body and 'id="id_groups-results"' in body
    assert "type more to narrow" in body
    # Nothing without a search: never the whole list.
    empty = owner_client.get(_url("pick_invitation_groups", org), {"name": "groups"})
    assert _values(empty.content.decode(), "groups") == []


def test_endpoint_ranks_prefix_matches_first_and_keeps_the_chosen(
    org: Org, owner_client: Client
) -> None:
    inner = GroupFactory(organization=org.organization, name="a-ops-team")
    prefix = GroupFactory(organization=org.organization, name="ops")
    chosen = GroupFactory(organization=org.organization, name="billing")
    body = owner_client.get(
        _url("pick_invitation_groups", org),
        {"name": "groups", "groups_q": "OPS", "groups": [str(chosen.pk), "junk"]},
    ).content.decode()
    assert _values(body, "groups") == [str(chosen.pk), str(prefix.pk), str(inner.pk)]
    assert f'value="{chosen.pk}" checked' in body


def test_endpoint_refuses_ill_formed_names_and_ids(org: Org, owner_client: Client) -> None:
    GroupFactory(organization=org.organization, name="ops")
    body = owner_client.get(
        _url("pick_invitation_groups", org),
        {"name": '"><script>', "id": "x y", '"><script>_q': "ops"},
    ).content.decode()
    assert "<script>" not in body and 'id="pick-results"' in body


def test_policy_principal_pickers_leave_out_the_attached(org: Org, owner_client: Client) -> None:
    policy = PolicyFactory(organization=org.organization, name="Deployers")
    PolicyAttachment.objects.create(
        policy=policy, membership=org.tech, organization=org.organization
    )
    url = reverse(
        "organizations:pick_policy_principals",
        args=[org.organization.pk, policy.pk, "user"],
    )
    body = owner_client.get(url, {"name": "membership", "membership_q": "example"}).content
    found = set(_values(body.decode(), "membership"))
    assert str(org.tech.pk) not in found and str(org.billing.pk) in found
    foreign = PolicyFactory(organization=OrganizationFactory())
    foreign_url = reverse(
        "organizations:pick_policy_principals",
        args=[org.organization.pk, foreign.pk, "user"],
    )
    assert owner_client.get(foreign_url).status_code == 404
    bad_kind = reverse(
        "organizations:pick_policy_principals", args=[org.organization.pk, policy.pk, "robot"]
    )
    assert owner_client.get(bad_kind).status_code == 404


def test_principal_endpoint_answers_users_and_applications_of_the_organization(
    org: Org, owner_client: Client
) -> None:
    """The simulator's principal: users and applications in one bounded list, posted as
    `user:<membership id>` / `application:<id>`, the chosen one kept."""
    users = MembershipFactory.create_batch(PICK_MATCHES, organization=org.organization)
    application = ApplicationFactory(organization=org.organization, name="user-sync")
    ApplicationFactory(organization=OrganizationFactory(), name="user-foreign")
    foreign = MembershipFactory(organization=OrganizationFactory())
    url = _url("pick_simulator_principals", org)
    params = {"name": "principal", "id": "id_principal", "principal_q": "user"}
    body = owner_client.get(url, params, headers=HTMX).content.decode()
    found = _values(body, "principal")
    assert len(found) == PICK_MATCHES and "type more to narrow" in body
    assert all(value.startswith(("user:", "application:")) for value in found)
    assert str(foreign.pk) not in body and "user-foreign" not in body
    chosen = f"user:{users[-1].pk}"
    body = owner_client.get(url, {**params, "principal_q": "sync", "principal": chosen})
    assert _values(body.content.decode(), "principal") == [chosen, f"application:{application.pk}"]
    # A foreign or ill-formed chosen value is left out, never an error.
    for value in (f"user:{foreign.pk}", "robot:1", "user:junk"):
        body = owner_client.get(url, {**params, "principal_q": "sync", "principal": value})
        assert _values(body.content.decode(), "principal") == [f"application:{application.pk}"]


def test_project_endpoints_answer_a_page_of_the_organizations_projects(
    org: Org, owner_client: Client
) -> None:
    mine = ProjectFactory.create_batch(PICK_MATCHES + 3, organization=org.organization)
    foreign = ProjectFactory(organization=OrganizationFactory(), name="proj-foreign")
    for name in ("pick_simulator_projects", "pick_rule_projects", "pick_guardrail_projects"):
        params = {"name": "projects", "type": "checkbox", "projects_q": "p"}
        body = owner_client.get(_url(name, org), params).content.decode()
        found = _values(body, "projects")
        assert len(found) == PICK_MATCHES, name
        assert set(found) <= {str(project.pk) for project in mine}
        assert str(foreign.pk) not in body and 'type="checkbox"' in body


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("pick_invitation_groups", ()),
        ("pick_member_groups", ()),
        ("pick_key_applications", ()),
        ("pick_key_projects", ()),
        ("pick_simulator_principals", ()),
        ("pick_simulator_projects", ()),
        ("pick_users_permission_projects", ()),
        ("pick_applications_permission_projects", ()),
        ("pick_rule_projects", ()),
        ("pick_guardrail_projects", ()),
    ],
)
def test_endpoints_are_guarded_as_their_pages(
    org: Org, name: str, args: tuple[object, ...]
) -> None:
    url = _url(name, org, *args)
    assert org.client_for("outsider").get(url).status_code == 404
    assert org.client_for("billing").get(url).status_code == 403
    assert org.client_for("owner").get(url).status_code == 200


def test_principal_endpoints_are_guarded(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    application = ApplicationFactory(organization=org.organization)
    urls = [
        _url("pick_principal_policies", org, "group", group.pk),
        _url("pick_user_groups", org, org.tech.pk),
        _url("pick_group_members", org, group.pk),
        _url("pick_group_applications", org, group.pk),
        _url("pick_application_groups", org, application.pk),
    ]
    for url in urls:
        assert org.client_for("outsider").get(url).status_code == 404, url
        assert org.client_for("readonly").get(url).status_code == 403, url
        assert org.client_for("owner").get(url).status_code == 200, url
    foreign_group = GroupFactory(organization=OrganizationFactory())
    for name in ("pick_group_members", "pick_group_applications"):
        url = _url(name, org, foreign_group.pk)
        assert org.client_for("owner").get(url).status_code == 404, name
    foreign_application = ApplicationFactory(organization=OrganizationFactory())
    url = _url("pick_application_groups", org, foreign_application.pk)
    assert org.client_for("owner").get(url).status_code == 404


# --- the pickers post and validate


def test_policy_page_attach_refuses_a_foreign_principal(org: Org, owner_client: Client) -> None:
    policy = PolicyFactory(organization=org.organization)
    attach = reverse("policies:policy_attach", args=[org.organization.pk, policy.pk])
    foreign = MembershipFactory(organization=OrganizationFactory())
    for data in ({"membership": str(foreign.pk)}, {"membership": "not-an-id"}):
        response = owner_client.post(attach, data)
        assert response.status_code == 400
        assert "Choose one of this organization" in response.content.decode()
    assert not PolicyAttachment.objects.filter(policy=policy).exists()
    response = owner_client.post(attach, {"membership": str(org.tech.pk)})
    assert response.status_code == 302
    assert PolicyAttachment.objects.get(policy=policy).membership == org.tech


def test_principal_panel_refuses_a_foreign_policy(org: Org, owner_client: Client) -> None:
    group = GroupFactory(organization=org.organization)
    attach = reverse(
        "policies:principal_policy_attach", args=[org.organization.pk, "group", group.pk]
    )
    foreign = PolicyFactory(organization=OrganizationFactory())
    response = owner_client.post(attach, {"policy": str(foreign.pk)}, headers=HTMX)
    assert "Choose a policy of this organization" in response.content.decode()
    assert not PolicyAttachment.objects.filter(group=group).exists()


def test_invitation_groups_pick_posts_and_refuses_foreign_groups(
    org: Org, owner_client: Client
) -> None:
    otp_verify(owner_client, org.owner.user)
    url = reverse("organizations:invite", args=[org.organization.pk])
    body = owner_client.get(url).content.decode()
    assert 'name="groups_q"' in body and 'id="search-pick"' in body
    foreign = GroupFactory(organization=OrganizationFactory())
    response = owner_client.post(url, {"emails": "new@example.com", "groups": [str(foreign.pk)]})
    assert response.status_code == 400 and not Invitation.objects.exists()
    mine = GroupFactory(organization=org.organization, name="ops")
    response = owner_client.post(url, {"emails": "new@example.com", "groups": [str(mine.pk)]})
    assert response.status_code == 302
    assert list(Invitation.objects.get().groups.all()) == [mine]


def test_api_key_bearer_pick_refuses_a_foreign_application(org: Org, owner_client: Client) -> None:
    url = reverse("organizations:api_key_create", args=[org.organization.pk])
    body = owner_client.get(url).content.decode()
    assert 'name="bearer" value="self" checked' in body
    foreign = ApplicationFactory(organization=OrganizationFactory())
    response = owner_client.post(url, {"bearer": str(foreign.pk)})
    assert response.status_code == 400
    assert "nobody creates keys" in response.content.decode()
    assert not APIKey.objects.exists()
    mine = ApplicationFactory(organization=org.organization)
    response = owner_client.post(url, {"bearer": str(mine.pk), "default_project": ""})
    assert response.status_code == 302
    assert APIKey.objects.get().bearer_application == mine


def test_no_script_search_renders_the_matches_in_the_page(org: Org, owner_client: Client) -> None:
    """Without scripts, the page's `search-pick` GET form reloads it with `<field>_q`."""
    policy = PolicyFactory(organization=org.organization)
    page = reverse("policies:policy_detail", args=[org.organization.pk, policy.pk])
    body = owner_client.get(page, {"membership_q": org.tech.user.email}).content.decode()
    assert _values(body, "membership") == [str(org.tech.pk)]


# --- pages bounded by what they show


def _grow(org: Org, count: int) -> None:
    """`count` more users, groups, applications, policies, projects and API keys, none of
    them on the pages measured."""
    organization = org.organization
    MembershipFactory.create_batch(count, organization=organization)
    GroupFactory.create_batch(count, organization=organization)
    applications = ApplicationFactory.create_batch(count, organization=organization)
    PolicyFactory.create_batch(count, organization=organization)
    ProjectFactory.create_batch(count, organization=organization)
    for application in applications:
        APIKeyFactory(bearer_application=application)


def _measure(client: Client, url: str, **kwargs: object) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200, url
    return len(response.content), len(queries.captured_queries)


def _pages(org: Org) -> dict[str, Callable[[], tuple[str, dict[str, object]]]]:
    organization = org.organization
    policy = PolicyFactory(organization=organization, name="Measured")
    group = GroupFactory(organization=organization, name="measured")
    application = ApplicationFactory(organization=organization, name="measured-app")
    audit = reverse("audit:event_list", args=[organization.pk])
    project = ProjectFactory(organization=organization, name="measured-project")
    simulator = reverse("iamtools:simulator", args=[organization.pk])
    who_can = reverse("iamtools:who_can", args=[organization.pk])
    question = {"resource": "", "resource_type": "compute:instances", "project": project.pk}
    return {
        "policy page": (reverse("policies:policy_detail", args=[organization.pk, policy.pk]), {}),
        "user page": (_url("user_detail", org, org.tech.pk), {}),
        "group page": (_url("group_detail", org, group.pk), {}),
        "groups list": (_url("group_list", org), {}),
        # Owners only, so the rows stay the same: the filters must not list the groups.
        "users list": (_url("user_list", org), {"data": {"kind": "owner"}}),
        "application page": (_url("application_detail", org, application.pk), {}),
        "api key form": (_url("api_key_create", org), {}),
        "api keys list": (_url("api_key_list", org), {}),
        "invite form": (_url("invite", org), {}),
        "new member form": (_url("member_create", org), {}),
        "audit trail": (audit, {}),
        "simulator": (simulator, {}),
        "simulator with a decision": (
            simulator,
            {
                "data": {
                    "principal": f"user:{org.tech.pk}",
                    "action": "compute:instances:create",
                    "project": project.pk,
                }
            },
        ),
        "simulator, an application": (
            simulator,
            {"data": {"principal": f"application:{application.pk}", "action": "iam:users:list"}},
        ),
        "who can": (who_can, {}),
        # Only owners hold it: the answer's rows stay the same.
        "who can, answered": (who_can, {"data": {"action": "iam:guardrails:update"}}),
        "effective permissions": (
            reverse("iamtools:effective_permissions", args=[organization.pk, org.tech.pk]),
            {"data": question},
        ),
        "application permissions": (
            reverse("iamtools:application_permissions", args=[organization.pk, application.pk]),
            {},
        ),
        "audit results": (
            audit,
            {"headers": {**HTMX, "HX-Target": "audit-results"}, "data": {"result": "allowed"}},
        ),
    }


def test_pages_do_not_grow_with_the_organization(org: Org, owner_client: Client) -> None:
    otp_verify(owner_client, org.owner.user)
    pages = _pages(org)
    AuditEventFactory.create_batch(5, organization=org.organization, result="allowed")
    _grow(org, 10)
    small = {name: _measure(owner_client, url, **kw) for name, (url, kw) in pages.items()}
    _grow(org, 190)
    large = {name: _measure(owner_client, url, **kw) for name, (url, kw) in pages.items()}
    for name in pages:
        (small_bytes, small_queries), (large_bytes, large_queries) = small[name], large[name]
        # The groups and keys lists show a page of 25: at most that many rows more, never
        # the organization.
        paged = ("groups list", "api keys list")
        bound = 12_000 if name in paged else 600
        assert abs(large_bytes - small_bytes) < bound, (name, small_bytes, large_bytes)
        assert large_queries <= small_queries, (name, small_queries, large_queries)


def test_group_page_shows_a_page_of_members_with_search(org: Org, owner_client: Client) -> None:
    group = GroupFactory(organization=org.organization)
    members = MembershipFactory.create_batch(30, organization=org.organization)
    group.members.add(*members)
    page = _url("group_detail", org, group.pk)
    body = owner_client.get(page).content.decode()
    assert body.count('name="remove_user"') == 25
    assert "Page 1 of 2" in body
    email = members[7].user.email
    body = owner_client.get(page, {"members_q": email}).content.decode()
    assert body.count('name="remove_user"') == 1 and email in body


def test_groups_list_counts_the_shown_groups(org: Org, owner_client: Client) -> None:
    group = GroupFactory(organization=org.organization, name="aaa-first")
    group.members.add(org.tech, org.billing)
    GroupFactory.create_batch(30, organization=org.organization)
    response = owner_client.get(_url("group_list", org))
    shown = list(response.context["page"])
    assert len(shown) == 25 and shown[0] == group and shown[0].member_count == 2
    assert Group.objects.filter(organization=org.organization).count() == 31


def test_audit_principal_filter_matches_a_typed_label(org: Org, owner_client: Client) -> None:
    url = reverse("audit:event_list", args=[org.organization.pk])
    AuditEventFactory(
        organization=org.organization, actor_type="user", actor_id=str(org.tech.user_id)
    )
    AuditEventFactory(organization=org.organization, actor_type="user", actor_id="999")
    response = owner_client.get(url, {"principal": org.tech.user.email.upper()})
    events = list(response.context["page"])
    assert [event.actor_id for event in events] == [str(org.tech.user_id)]
    application = ApplicationFactory(organization=org.organization, name="ci")
    AuditEventFactory(
        organization=org.organization, actor_type="application", actor_id=str(application.pk)
    )
    response = owner_client.get(url, {"principal": "ci"})
    assert [event.actor_id for event in response.context["page"]] == [str(application.pk)]
    # An outsider's email names nobody here: said so, never a list of everyone.
    response = owner_client.get(url, {"principal": org.outsider.email})
    body = response.content.decode()
    assert "No user, application or API key of this organization" in body
    assert '<option value="user:' not in body
    assert AuditEvent.objects.filter(organization=org.organization).count() >= 3
