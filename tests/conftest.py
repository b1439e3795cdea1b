"""Personas shared by every test: an owner, tech, billing and read-only user, an outsider."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from organizations.models import Membership, Organization
from policies.models import Policy
from tests.factories import MembershipFactory, OrganizationFactory

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still be
# usable there for fixtures (the live server itself runs in its own thread).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@dataclass
class Org:
    organization: Organization
    owner: Membership
    tech: Membership
    billing: Membership
    readonly: Membership
    outsider: User

    def client_for(self, who: str) -> Client:
        """A client signed in as the persona `who` (owner, tech, billing, readonly, outsider)."""
        user = self.outsider if who == "outsider" else getattr(self, who).user
        client = Client()
        client.force_login(user)
        return client


def _attach_managed(membership: Membership, name: str) -> None:
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name=name)
    membership.policy_attachments.create(policy=policy, organization=membership.organization)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache: rate windows (audit denials, lock-out events)
    must not carry over from another test. (The shared rate counters live in the database,
    which each test's rollback resets.)"""
    cache.clear()


@pytest.fixture
def org(db: None) -> Org:
    organization = OrganizationFactory(name="Acme")
    owner = MembershipFactory(organization=organization, is_owner=True)
    tech = MembershipFactory(organization=organization)
    billing = MembershipFactory(organization=organization)
    readonly = MembershipFactory(organization=organization)
    _attach_managed(tech, "TechAccess")
    _attach_managed(billing, "BillingAccess")
    _attach_managed(readonly, "ReadOnlyAccess")
    outsider = MembershipFactory(is_owner=True).user  # owns another organization
    return Org(organization, owner, tech, billing, readonly, outsider)


def otp_verify(client: Client, user: User) -> TOTPDevice:
    """Give `user` a confirmed authenticator and mark the client's session verified with it,
    as the second sign-in step does (force_login skips it). Clients signed in by
    force_login are also freshly confirmed for sensitive actions (accounts.sudo)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`@pytest.mark.postgres` tests race real concurrent transactions, which SQLite
    serialises: elsewhere they skip (CI runs them on its PostgreSQL pass)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs concurrent PostgreSQL transactions")
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


@pytest.fixture
def owner_client(org: Org) -> Client:
    return org.client_for("owner")


def assert_access(org: Org, method: str, url: str, expected: dict[str, int], **data: str) -> None:
    """Role matrix: each persona gets the expected status code for `method url`."""
    seen = {}
    for who in expected:
        client = org.client_for(who)
        response = client.post(url, data) if method == "post" else client.get(url)
        seen[who] = response.status_code
    assert seen == expected, f"{method.upper()} {url}"
