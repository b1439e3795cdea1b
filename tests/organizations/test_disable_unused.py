"""Disabling what goes unused (#16): an organization's security setting, and
`manage.py disable_unused` disabling its unused API keys and suspending its unused
members (never owners), audited by the system and reversible."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from iamportal import invalidation
from organizations.models import APIKey, Membership, Organization
from organizations.services import api_keys as api_key_services
from organizations.services.dormancy import organization_disable_unused
from organizations.services.people import membership_reactivate
from tests.api.conftest import API, allow, key_token
from tests.api.test_key_cache import eventually
from tests.conftest import Org
from tests.factories import API_KEY_SECRET, APIKeyFactory, ApplicationFactory, MembershipFactory

pytestmark = pytest.mark.django_db

DAYS = 30
NOW = timezone.now()


def ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def turn_on(org: Org, days: int | None = DAYS) -> Organization:
    Organization.objects.filter(pk=org.organization.pk).update(disable_unused_after_days=days)
    org.organization.refresh_from_db()
    return org.organization


def key(org: Org, *, created: int, used: int | None = None, **fields: Any) -> APIKey:
    api_key = APIKeyFactory(bearer_application=ApplicationFactory(organization=org.organization))
    APIKey.objects.filter(pk=api_key.pk).update(
        created_at=ago(created), last_used_at=None if used is None else ago(used), **fields
    )
    return api_key


def member(org: Org, *, joined: int, signed_in: int | None = None, **fields: Any) -> Membership:
    membership = MembershipFactory(organization=org.organization, **fields)
    Membership.objects.filter(pk=membership.pk).update(created_at=ago(joined))
    type(membership.user).objects.filter(pk=membership.user_id).update(
        last_login=None if signed_in is None else ago(signed_in)
    )
    return membership


def disabled(api_key: APIKey) -> bool:
    return APIKey.objects.get(pk=api_key.pk).disabled_at is not None


def suspended(membership: Membership) -> bool:
    return Membership.objects.get(pk=membership.pk).status == Membership.Status.SUSPENDED


# --------------------------------------------------------------------------- setting


def security_form(**values: Any) -> dict[str, Any]:
    return {
        "mfa_grace_days": 5,
        "login_failure_limit": 5,
        "session_max_age_hours": 12,
        "api_key_max_lifetime_days": "",
        "invitation_domains": "",
        "audit_retention_days": 60,
        **values,
    }


def test_the_setting_is_off_by_default_and_bounded(org: Org) -> None:
    assert org.organization.disable_unused_after_days is None
    client = org.client_for("owner")
    page = reverse("organizations:security_settings", args=[org.organization.pk])
    assert b"Disable unused keys and users" in client.get(page).content
    edit = reverse("organizations:security_settings_update", args=[org.organization.pk])
    for junk in ("6", "3651", "ten"):
        response = client.post(edit, security_form(disable_unused_after_days=junk))
        assert response.status_code == 400
    org.organization.refresh_from_db()
    assert org.organization.disable_unused_after_days is None
    response = client.post(edit, security_form(disable_unused_after_days="90"))
    assert response.status_code == 302
    org.organization.refresh_from_db()
    assert org.organization.disable_unused_after_days == 90
    event = AuditEvent.objects.get(action="organization.security.updated")
    assert event.data["after"]["disable_unused_after_days"] == 90
    assert b"After 90 days unused" in client.get(page).content


# ----------------------------------------------------------------------------- sweep


def test_unused_keys_are_disabled_and_used_ones_kept(org: Org) -> None:
    turn_on(org)
    stale = key(org, created=100, used=40)
    never = key(org, created=40)
    recent = key(org, created=100, used=5)
    new = key(org, created=5)
    enabled_again = key(org, created=100, used=40, enabled_at=ago(5))
    done = organization_disable_unused(organization=org.organization)
    assert sorted(done.keys) == sorted([stale.access_key, never.access_key])
    assert disabled(stale) and disabled(never)
    assert not any(disabled(k) for k in (recent, new, enabled_again))
    event = AuditEvent.objects.get(action="iam.api_key.disabled", target_id=str(stale.pk))
    assert event.data == {"reason": "unused for 30 days"}
    assert event.actor_type == "" and event.actor_user is None  # the system
    assert APIKey.objects.get(pk=stale.pk).disabled_reason == "unused for 30 days"


def test_unused_members_are_suspended_but_never_owners(org: Org) -> None:
    turn_on(org)
    gone = member(org, joined=100, signed_in=40)
    never = member(org, joined=100)
    active = member(org, joined=100, signed_in=5)
    newcomer = member(org, joined=5)
    owner = member(org, joined=100, signed_in=200, is_owner=True)
    scripted = member(org, joined=100, signed_in=40)
    APIKeyFactory(
        bearer_membership=scripted,
        bearer_application=None,
        organization=org.organization,
        last_used_at=ago(1),
    )
    done = organization_disable_unused(organization=org.organization)
    assert sorted(done.members) == sorted([gone.user.email, never.user.email])
    assert suspended(gone) and suspended(never)
    assert not any(suspended(m) for m in (active, newcomer, owner, scripted))
    event = AuditEvent.objects.get(action="iam.user.suspended", target_id=str(gone.pk))
    assert event.data == {"reason": "unused for 30 days"}
    assert event.actor_type == "" and event.actor_user is None


def test_the_sweep_is_idempotent_and_off_unless_set(org: Org) -> None:
    stale = key(org, created=100, used=40)
    gone = member(org, joined=100, signed_in=40)
    assert organization_disable_unused(organization=org.organization).keys == []
    assert not disabled(stale) and not suspended(gone)
    turn_on(org)
    first = organization_disable_unused(organization=org.organization)
    assert first.keys and first.members
    events = AuditEvent.objects.count()
    again = organization_disable_unused(organization=org.organization)
    assert again.keys == [] and again.members == []
    assert AuditEvent.objects.count() == events


def test_reactivated_members_and_enabled_keys_get_a_fresh_start(org: Org) -> None:
    turn_on(org)
    gone = member(org, joined=100, signed_in=40)
    stale = key(org, created=100, used=40)
    organization_disable_unused(organization=org.organization)
    assert suspended(gone) and disabled(stale)
    membership_reactivate(membership=gone, actor=org.owner)
    assert api_key_services.api_key_enable(api_key=stale, actor=org.owner.user)
    organization_disable_unused(organization=org.organization)
    assert not suspended(gone) and not disabled(stale)
    enabled = AuditEvent.objects.get(action="iam.api_key.enabled")
    assert enabled.data == {"disabled_for": "unused for 30 days"}
    assert enabled.actor_user == org.owner.user


def test_the_command_runs_every_organization_with_the_setting(org: Org) -> None:
    turn_on(org)
    stale = key(org, created=100, used=40)
    gone = member(org, joined=100, signed_in=40)
    elsewhere = MembershipFactory()  # another organization, setting off
    Membership.objects.filter(pk=elsewhere.pk).update(created_at=ago(100))
    out = io.StringIO()
    call_command("disable_unused", stdout=out)
    text = out.getvalue()
    assert f"Acme: disabled API key {stale.access_key} (unused for 30 days)" in text
    assert f"Acme: suspended {gone.user.email} (unused for 30 days)" in text
    assert "Disabled 1 API key(s), suspended 1 member(s)." in text
    assert not suspended(elsewhere)
    out = io.StringIO()
    call_command("disable_unused", stdout=out)
    assert "Disabled 0 API key(s), suspended 0 member(s)." in out.getvalue()


def test_the_sweep_reads_a_bounded_number_of_queries_per_change(
    org: Org, django_assert_max_num_queries: Any
) -> None:
    turn_on(org)
    for _ in range(10):
        key(org, created=100)
    # Finding nothing to change costs the same whatever the organization holds.
    with django_assert_max_num_queries(4):
        organization_disable_unused(organization=org.organization, now=ago(80))


# ---------------------------------------------------------------- disabled keys


def test_a_disabled_key_is_refused_and_works_again_once_enabled(org: Org) -> None:
    token = key_token(org.owner, org.owner)
    access_key = token.partition(".")[0]
    api_key = APIKey.objects.get(access_key=access_key)
    assert API(token).get("/me").status_code == 200
    assert api_key_services.api_key_disable(api_key=api_key, actor=None, reason="unused")
    assert not api_key_services.api_key_disable(api_key=api_key, actor=None, reason="unused")
    assert API(token).get("/me").status_code == 401
    assert api_key_services.api_key_authenticate(access_key=access_key, secret="x" * 43) is None
    assert api_key_services.api_key_enable(api_key=api_key, actor=org.owner.user)
    assert not api_key_services.api_key_enable(api_key=api_key, actor=org.owner.user)
    assert API(token).get("/me").status_code == 200


def test_disabling_bumps_the_authorization_version(org: Org) -> None:
    api_key = APIKeyFactory(bearer_application=ApplicationFactory(organization=org.organization))
    before = Organization.objects.get(pk=org.organization.pk).authz_version
    api_key_services.api_key_disable(api_key=api_key, actor=None, reason="unused")
    assert Organization.objects.get(pk=org.organization.pk).authz_version == before + 1
    assert (
        api_key_services.api_key_authenticate(access_key=api_key.access_key, secret=API_KEY_SECRET)
        is None
    )


def test_enabling_a_key_is_within_the_authors_rights(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    allow(application, "billing:invoices:read")
    api_key = APIKeyFactory(bearer_application=application)
    api_key_services.api_key_disable(api_key=api_key, actor=None, reason="unused")
    with pytest.raises(ValidationError, match="only grant what you hold"):
        api_key_services.api_key_enable(api_key=api_key, actor=org.tech.user)
    assert disabled(api_key)


@pytest.mark.postgres  # the key cache listens to PostgreSQL's notifications
@pytest.mark.django_db(transaction=True)
def test_a_cached_key_is_refused_at_once_when_disabled(org: Org, settings: Any) -> None:
    settings.API_KEY_CACHE_SECONDS = 10
    api_key_services._cached_keys.clear()
    assert eventually(lambda: invalidation.listening() is not None)
    try:
        token = key_token(org.owner, org.owner)
        api = API(token)
        assert api.get("/me").status_code == 200
        assert api_key_services._cached_keys  # kept
        api_key = APIKey.objects.get(access_key=token.partition(".")[0])
        api_key_services.api_key_disable(api_key=api_key, actor=None, reason="unused")
        assert eventually(lambda: api.get("/me").status_code == 401)
    finally:
        invalidation.stop_listening()
        api_key_services._cached_keys.clear()
