"""Groups and the dashboard at scale (issue #15): the groups list counts only the groups
it shows, the group page decides and reverses once per page rather than per row, and the
dashboard does not save the session on every view."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from organizations.models import Group
from organizations.selectors.groups import groups_listed, with_counts
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
)

pytestmark = pytest.mark.django_db


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def _group(org: Org, members: int, name: str = "big") -> Group:
    group = GroupFactory(organization=org.organization, name=name)
    group.members.add(*MembershipFactory.create_batch(members, organization=org.organization))
    return group


# --- the groups list


def test_the_groups_list_counts_the_members_applications_and_policies_of_each_group(
    org: Org,
) -> None:
    busy = _group(org, 3, name="busy")
    busy.applications.add(*ApplicationFactory.create_batch(2, organization=org.organization))
    for policy in PolicyFactory.create_batch(4, organization=org.organization):
        PolicyAttachmentFactory(
            policy=policy, membership=None, group=busy, organization=org.organization
        )
    empty = GroupFactory(organization=org.organization, name="empty")
    counted = {
        group.name: (group.member_count, group.application_count, group.policy_count)  # type: ignore[attr-defined]
        for group in with_counts(groups_listed(org.organization))
    }
    assert counted == {busy.name: (3, 2, 4), empty.name: (0, 0, 0)}


def test_the_groups_list_queries_do_not_grow_with_groups_or_members(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    url = _url("group_list", org)
    _group(org, 2, name="group-a")
    client.get(url)
    with django_assert_max_num_queries(10) as few:
        client.get(url)
    for index in range(30):  # more than a page of groups, one with many members
        _group(org, 40 if index == 0 else 1, name=f"group-{index:02d}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["page"].object_list) == 25


def test_the_groups_list_links_each_group_only_for_those_who_may_read_groups(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name="readers")
    body = org.client_for("owner").get(_url("group_list", org)).content.decode()
    assert f'<a href="{_url("group_detail", org, group.pk)}">readers</a>' in body


# --- the group page


def test_the_group_page_queries_do_not_grow_with_its_members(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    group = _group(org, 2)
    url = _url("group_detail", org, group.pk)
    client.get(url)
    with django_assert_max_num_queries(15) as few:
        client.get(url)
    group.members.add(*MembershipFactory.create_batch(60, organization=org.organization))
    group.applications.add(*ApplicationFactory.create_batch(5, organization=org.organization))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.context["members"].object_list) == 25


def test_the_group_page_rows_link_users_and_applications_and_post_removals(org: Org) -> None:
    group = _group(org, 3)
    application = ApplicationFactory(organization=org.organization)
    group.applications.add(application)
    body = org.client_for("owner").get(_url("group_detail", org, group.pk)).content.decode()
    members_url = _url("group_members", org, group.pk)
    for membership in group.members.all():
        assert f'href="{_url("user_detail", org, membership.pk)}"' in body
        assert f'name="remove_user" value="{membership.pk}"' in body
    assert f'href="{_url("application_detail", org, application.pk)}"' in body
    assert f'name="remove_application" value="{application.pk}"' in body
    # Every removal posts to the group's members endpoint (and its HTMX twin).
    forms = re.findall(r'action="([^"]+)"\s+hx-post="([^"]+)" hx-target="#group-members"', body)
    assert len(forms) >= 4 and set(forms) == {(members_url, members_url)}


def test_the_group_page_offers_no_removal_to_those_who_may_not_update_groups(org: Org) -> None:
    group = _group(org, 2)
    group.applications.add(ApplicationFactory(organization=org.organization))
    response = org.client_for("readonly").get(_url("group_detail", org, group.pk))
    body = response.content.decode()
    assert response.status_code == 200
    assert "remove_user" not in body and "remove_application" not in body
    assert not response.context["may_update"]


# --- the dashboard


def test_the_dashboard_saves_the_session_only_when_the_organization_changes(org: Org) -> None:
    client = org.client_for("owner")
    dashboard = _url("dashboard", org)
    client.get(dashboard)  # remembers the organization
    with CaptureQueriesContext(connection) as queries:
        assert client.get(dashboard).status_code == 200
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    # `home` still opens the organization viewed last.
    response = client.get(reverse("organizations:home"))
    assert response.status_code == 302 and response.url == dashboard
