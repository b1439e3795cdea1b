from __future__ import annotations

import pytest
from django.urls import reverse

from organizations.services import organization_bump_authz_version
from policies import authz
from tests.conftest import Org

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
