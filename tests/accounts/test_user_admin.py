"""Operators' edits of an account in the admin move its organizations' authorization
versions: deciding caches principals per version (policies.authz)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.test import RequestFactory

from accounts.models import User
from organizations.models import Organization
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def test_saving_an_account_bumps_each_of_its_organizations() -> None:
    first, second, other = OrganizationFactory(), OrganizationFactory(), OrganizationFactory()
    membership = MembershipFactory(organization=first)
    MembershipFactory(organization=second, user=membership.user)
    user = membership.user
    user.is_active = False
    user.save()
    form = SimpleNamespace(instance=user, save_m2m=lambda: None)
    admin.site._registry[User].save_related(RequestFactory().post("/"), form, [], change=True)
    versions = dict(Organization.objects.values_list("pk", "authz_version"))
    assert versions[first.pk] == first.authz_version + 1
    assert versions[second.pk] == second.authz_version + 1
    assert versions[other.pk] == other.authz_version
