"""List pages run a constant number of queries however many users and groups exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Org
from tests.factories import GroupFactory, MembershipFactory
from tests.scim.conftest import ScimClient


def _grow(org: Org, users: int, groups: int) -> None:
    group = GroupFactory(organization=org.organization)
    for _ in range(users):
        group.members.add(MembershipFactory(organization=org.organization))
    for _ in range(groups):
        GroupFactory(organization=org.organization)


@pytest.mark.parametrize("users", [10, 60])
def test_users_list_queries_stay_flat(
    org: Org, scim: ScimClient, users: int, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    _grow(org, users, 0)
    scim.get("Users")  # the token's last use is written once a minute: not counted below
    with django_assert_max_num_queries(6):
        page = scim.get("Users", count="100").json()
    assert page["itemsPerPage"] == users + 4  # and the personas


@pytest.mark.parametrize("groups", [10, 60])
def test_groups_list_queries_stay_flat(
    org: Org, scim: ScimClient, groups: int, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    _grow(org, 10, groups)
    scim.get("Groups")
    with django_assert_max_num_queries(5):
        page = scim.get("Groups", count="100").json()
    assert page["itemsPerPage"] == groups + 1
    assert "members" not in page["Resources"][0]
