from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Group, Membership
from tests.accounts.helpers import expire_sudo
from tests.conftest import Org, assert_access
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def test_create_rename_and_delete_a_group(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(_url("group_create", org), {"name": "Devs", "description": "Dev team"})
    group = Group.objects.get(organization=org.organization)
    assert response.status_code == 302 and response.url == _url("group_detail", org, group.pk)
    duplicate = client.post(_url("group_create", org), {"name": "devs"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    response = client.post(
        _url("group_update", org, group.pk),
        {"name": "Developers", "description": ""},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Developers" in response.content.decode()
    group.refresh_from_db()
    assert group.name == "Developers"
    delete = _url("group_delete", org, group.pk)
    assert client.post(delete, {"confirm": "Devs"}).status_code == 400
    assert client.post(delete, {"confirm": "Developers"}).status_code == 302
    assert not Group.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"iam.group.created", "iam.group.updated", "iam.group.deleted"} <= actions


def test_an_htmx_create_with_an_error_rerenders_the_form(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(_url("group_create", org), {"name": " "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="group-create"' in response.content.decode()
    assert not Group.objects.exists()


def test_group_members_give_and_take_the_groups_policies(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="Billing-team")
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, actions=["billing:invoices:list"])
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    readonly = org.client_for("readonly")
    invoices = _url("invoice_list", org)
    assert readonly.get(invoices).status_code == 403
    owner = org.client_for("owner")
    members = _url("group_members", org, group.pk)
    response = owner.post(members, {"add_user": org.readonly.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and org.readonly.user.email in response.content.decode()
    assert readonly.get(invoices).status_code == 200
    owner.post(members, {"remove_user": org.readonly.pk})
    assert readonly.get(invoices).status_code == 403


def test_applications_join_and_leave_groups_from_the_group_page(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    app = ApplicationFactory(organization=org.organization, name="ci")
    client = org.client_for("owner")
    members = _url("group_members", org, group.pk)
    client.post(members, {"add_application": app.pk})
    assert list(group.applications.all()) == [app]
    client.post(members, {"remove_application": app.pk})
    assert not group.applications.exists()


def test_adding_members_asks_for_a_fresh_confirmation(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    app = ApplicationFactory(organization=org.organization, name="ci")
    client = org.client_for("owner")
    expire_sudo(client)
    members = _url("group_members", org, group.pk)
    for data in ({"add_user": org.tech.pk}, {"add_application": app.pk}):
        response = client.post(members, data)
        assert response["Location"].startswith(reverse("accounts:confirm"))
    assert not group.members.exists() and not group.applications.exists()


def test_foreign_principals_cannot_join(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    client = org.client_for("owner")
    members = _url("group_members", org, group.pk)
    stranger = MembershipFactory()
    response = client.post(members, {"add_user": stranger.pk}, follow=True)
    assert "does not exist in this organization" in response.content.decode()
    response = client.post(members, {"add_user": "junk"}, follow=True)
    assert response.status_code == 200
    assert not group.members.exists()


def test_the_user_picker_searches_only_users_outside_the_group(org: Org) -> None:
    """One picker (iamportal.widgets.pick_form): its search answers radios named
    `add_user`, the field the members form posts; never a list on a plain view."""
    group = GroupFactory(organization=org.organization)
    group.members.add(org.tech)
    MembershipFactory(organization=OrganizationFactory())
    client = org.client_for("owner")
    page = _url("group_detail", org, group.pk)
    body = client.get(page).content.decode()
    search = _url("pick_group_members", org, group.pk)
    assert 'name="add_user_q"' in body and f'hx-get="{search}"' in body
    assert f'name="add_user" value="{org.billing.pk}"' not in body
    params = {"name": "add_user", "id": "group-add_user", "add_user_q": "example"}
    found = client.get(search, params, HTTP_HX_REQUEST="true").content.decode()
    assert f'name="add_user" value="{org.billing.pk}"' in found
    assert org.billing.user.email in found and str(org.tech.pk) not in found
    members = Membership.objects.filter(organization=org.organization).exclude(groups=group)
    assert set(re.findall(r'name="add_user" value="([^"]+)"', found)) == {
        str(pk) for pk in members.values_list("pk", flat=True)
    }
    # Without scripts the page's search-pick form reloads it with `add_user_q`.
    body = client.get(page, {"add_user_q": org.billing.user.email}).content.decode()
    assert f'name="add_user" value="{org.billing.pk}"' in body
    assert f'<label><input type="radio" name="add_user" value="{org.billing.pk}">' in body
    assert f"> {org.billing.user.email}</label>" in body


def test_a_picked_user_joins_with_and_without_htmx_and_is_previewed(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="ops")
    client = org.client_for("owner")
    members = _url("group_members", org, group.pk)
    shown = client.post(
        members, {"add_user": org.billing.pk, "preview": "1"}, HTTP_HX_REQUEST="true"
    )
    assert f"Preview: add {org.billing.user.email} to ops" in shown.content.decode()
    assert not group.members.exists()
    response = client.post(members, {"add_user": org.billing.pk})
    assert response.status_code == 302 and list(group.members.all()) == [org.billing]
    response = client.post(members, {"add_user": org.tech.pk}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="group-members">')
    assert 'name="add_user_q"' in body and set(group.members.all()) == {org.billing, org.tech}


def test_the_group_page_queries_do_not_grow_with_users_to_add(
    org: Org, django_assert_max_num_queries
) -> None:
    group = GroupFactory(organization=org.organization)
    client = org.client_for("owner")
    page = _url("group_detail", org, group.pk)
    client.get(page)
    with django_assert_max_num_queries(40) as captured:
        client.get(page)
    MembershipFactory.create_batch(30, organization=org.organization)
    with django_assert_max_num_queries(len(captured)):
        body = client.get(page).content.decode()
    assert body.count('name="add_user"') == 0


def test_group_pages_are_guarded(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    assert_access(
        org,
        "get",
        _url("group_list", org),
        {"owner": 200, "tech": 200, "billing": 403, "readonly": 200, "outsider": 404},
    )
    assert_access(
        org,
        "post",
        _url("group_members", org, group.pk),
        {"readonly": 403, "tech": 403, "outsider": 404},
        add_user=str(org.tech.pk),
    )
    foreign = GroupFactory()
    assert org.client_for("owner").get(_url("group_detail", org, foreign.pk)).status_code == 404


def test_group_list_runs_constant_queries(org: Org, django_assert_max_num_queries) -> None:
    client = org.client_for("owner")
    url = _url("group_list", org)
    GroupFactory(organization=org.organization)
    client.get(url)
    with django_assert_max_num_queries(10) as few:
        client.get(url)
    for _ in range(20):
        GroupFactory(organization=org.organization).members.add(org.tech)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)
