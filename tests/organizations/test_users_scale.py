"""The users list and a user's page at scale (issue #15): the list reads owners and the
rest separately (each by email) yet pages exactly as one list ordered owners first; its
cells' group and policy names come in a fixed number of queries; neither page's query
count grows with the organization; search has trigram indexes on PostgreSQL."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.urls import reverse

from iamportal.request import PAGE_SIZE
from organizations.models import Membership
from organizations.selectors.people import UserFilters, UserList, users_of
from tests.conftest import Org
from tests.factories import (
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def _member(org: Org, email: str, **fields: object) -> Membership:
    return MembershipFactory(organization=org.organization, user=UserFactory(email=email), **fields)


@pytest.fixture
def crowd(org: Org) -> Org:
    """Owners whose emails sort among the members', some suspended members and guests."""
    for n in range(3):
        _member(org, f"m{n}-owner@example.com", is_owner=True)
    for n in range(PAGE_SIZE + 7):
        _member(org, f"m{n:02d}@example.com", status="suspended" if n % 4 == 0 else "active")
    return org


def _ids(rows: object) -> list[object]:
    return [m.pk for m in rows]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "filters",
    [
        UserFilters(),
        UserFilters(kind="owner"),
        UserFilters(kind="guest"),
        UserFilters(status="suspended"),
        UserFilters(q="m1"),
        UserFilters(mfa="no"),
    ],
)
def test_every_slice_matches_the_one_list_ordered_owners_first(
    crowd: Org, filters: UserFilters
) -> None:
    expected = _ids(users_of(crowd.organization, filters))
    rows = UserList(crowd.organization, filters)
    assert rows.count() == len(expected) > 0
    for start in (0, 1, 2, 3, 4, len(expected) - 1):
        for stop in (start + 1, start + 3, start + PAGE_SIZE, len(expected) + 5):
            assert _ids(rows[start:stop]) == expected[start:stop], (start, stop)


def test_pages_show_owners_first_then_everyone_by_email(crowd: Org) -> None:
    client = crowd.client_for("owner")
    first = client.get(_url("user_list", crowd))
    second = client.get(_url("user_list", crowd), {"page": 2})
    shown = [m.user.email for m in first.context["page"]] + [
        m.user.email for m in second.context["page"]
    ]
    owners = sorted(
        Membership.objects.filter(organization=crowd.organization, is_owner=True).values_list(
            "user__email", flat=True
        )
    )
    assert shown[: len(owners)] == owners
    assert shown[len(owners) :] == sorted(shown[len(owners) :])
    total = Membership.objects.filter(organization=crowd.organization).count()
    assert len(shown) == len(set(shown)) == total
    assert f"Page 1 of 2 · {total} in all" in first.content.decode()


def test_an_empty_result_runs_no_row_queries(org: Org, django_assert_max_num_queries) -> None:
    rows = UserList(org.organization, UserFilters(q="no such person"))
    with django_assert_max_num_queries(1):  # the count only
        assert rows.count() == 0 and rows[0:PAGE_SIZE] == []


def test_cells_name_groups_and_policies_in_order_and_escaped(org: Org) -> None:
    for name in ("zeta", "<b>Alpha</b>"):
        GroupFactory(organization=org.organization, name=name).members.add(org.tech)
    for name in ("Zed policy", "able policy"):
        PolicyAttachmentFactory(
            membership=org.tech, policy=PolicyFactory(organization=org.organization, name=name)
        )
    [row] = UserList(org.organization, UserFilters(q=org.tech.user.email))[0:1]
    assert row.group_names == ["<b>Alpha</b>", "zeta"]
    assert row.policy_names == sorted(["Zed policy", "able policy", "TechAccess"])
    body = org.client_for("owner").get(_url("user_list", org)).content.decode()
    assert "&lt;b&gt;Alpha&lt;/b&gt;, zeta" in body and "<b>Alpha</b>" not in body
    detail = _url("user_detail", org, org.tech.pk)
    assert f'href="{detail}"' in body


def test_links_follow_the_read_permission(org: Org) -> None:
    detail = _url("user_detail", org, org.tech.pk)
    for who in ("owner", "readonly"):
        response = org.client_for(who).get(_url("user_list", org))
        assert response.context["may_read"] and f'href="{detail}"' in response.content.decode()


def _grow(org: Org, people: int) -> None:
    groups = GroupFactory.create_batch(3, organization=org.organization)
    policy = PolicyFactory(organization=org.organization)
    for _ in range(people):
        membership = MembershipFactory(organization=org.organization)
        for group in groups:
            group.members.add(membership)
        PolicyAttachmentFactory(membership=membership, policy=policy)


@pytest.mark.parametrize("params", [{}, {"kind": "guest"}, {"q": "example"}, {"page": "2"}])
def test_list_queries_stay_flat_as_the_organization_grows(
    org: Org, params: dict[str, str], django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    url = _url("user_list", org)
    _grow(org, 2)
    client.get(url, params)
    with django_assert_max_num_queries(20) as few:
        client.get(url, params)
    _grow(org, PAGE_SIZE * 2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url, params)
    assert len(response.context["page"]) > 0


def test_user_page_queries_do_not_grow_with_the_users_groups(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    url = _url("user_detail", org, org.tech.pk)
    GroupFactory(organization=org.organization).members.add(org.tech)
    client.get(url)
    with django_assert_max_num_queries(30) as few:
        client.get(url)
    for group in GroupFactory.create_batch(12, organization=org.organization):
        group.members.add(org.tech)
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(url).content.decode()
    remove_forms = re.findall(r'name="remove" value="([^"]+)"', body)
    assert len(remove_forms) == 13


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL trigram indexes")
def test_search_has_trigram_indexes_on_postgresql() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'accounts_user'"
            " AND indexdef LIKE '%%gin_trgm_ops%%'"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert names == {"accounts_user_email_trgm", "accounts_user_full_name_trgm"}
