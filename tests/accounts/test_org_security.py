"""Organization security settings, MFA enforcement, member MFA reset and unlock."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import UserSession
from audit.models import AuditEvent
from organizations.forms.security import parse_domains
from organizations.models import Membership, Organization
from organizations.services.security import (
    member_mfa_unlock,
    membership_mfa_deadline,
    organization_update_security,
)
from policies.models import Policy
from tests.accounts.helpers import code, enroll, expire_sudo, password_step
from tests.conftest import Org, assert_access, otp_verify
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SETTINGS = {
    "mfa_required": "on",
    "mfa_grace_days": "3",
    "login_failure_limit": "5",
    "session_max_age_hours": "12",
    "api_key_max_lifetime_days": "",
    "invitation_domains": "",
    "audit_retention_days": "30",
}


def _url(org: Org, name: str, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def _require_mfa(org: Org, *, since: timedelta = timedelta(0), grace_days: int = 3) -> None:
    Organization.objects.filter(pk=org.organization.pk).update(
        mfa_required=True,
        mfa_required_since=timezone.now() - since,
        mfa_grace_days=grace_days,
    )
    # The personas joined before MFA was switched on.
    Membership.objects.filter(organization=org.organization).update(
        created_at=timezone.now() - timedelta(days=30)
    )


# Settings page


def test_security_settings_access(org: Org) -> None:
    # BillingAccess is invoices and the billing contact, not the security settings.
    expected = {"owner": 200, "tech": 200, "readonly": 200, "billing": 403, "outsider": 404}
    assert_access(org, "get", _url(org, "security_settings"), expected)
    expected = {"owner": 200, "tech": 403, "readonly": 403, "billing": 403, "outsider": 404}
    assert_access(org, "get", _url(org, "security_settings_update"), expected)


def test_changing_security_settings_is_audited_with_before_and_after(org: Org) -> None:
    client = org.client_for("owner")
    data = {
        **SETTINGS,
        "mfa_grace_days": "5",
        "login_failure_limit": "4",
        "session_max_age_hours": "8",
        "api_key_max_lifetime_days": "90",
        "invitation_domains": "Acme.example, @corp.acme.example\nacme.example",
        "audit_retention_days": "365",
    }
    response = client.post(_url(org, "security_settings_update"), data)
    assert response.status_code == 302
    organization = Organization.objects.get(pk=org.organization.pk)
    assert organization.mfa_required and organization.mfa_required_since is not None
    assert organization.invitation_domains == ["acme.example", "corp.acme.example"]
    assert organization.api_key_max_lifetime_days == 90
    event = AuditEvent.objects.get(action="organization.security.updated")
    assert event.data["before"]["login_failure_limit"] == 5
    assert event.data["after"]["login_failure_limit"] == 4
    assert event.data["after"]["mfa_required"] is True
    assert "audit_retention_days" in event.data["after"]
    page = client.get(_url(org, "security_settings")).content.decode()
    assert "corp.acme.example" in page and "90 days" in page


def test_saving_unchanged_settings_records_nothing(org: Org) -> None:
    client = org.client_for("owner")
    client.post(_url(org, "security_settings_update"), {**SETTINGS, "mfa_required": ""})
    assert not AuditEvent.objects.filter(action="organization.security.updated").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("invitation_domains", "acme.example, not a domain!", "Not a domain name: not, a, domain!"),
        ("login_failure_limit", "2", "greater than or equal to 3"),
        ("session_max_age_hours", "0", "greater than or equal to 1"),
        ("mfa_grace_days", "abc", "Enter a whole number"),
        ("api_key_max_lifetime_days", "99999", "less than or equal to 3650"),
    ],
)
def test_invalid_settings_are_refused_with_a_message(
    org: Org, field: str, value: str, message: str
) -> None:
    client = org.client_for("owner")
    response = client.post(_url(org, "security_settings_update"), {**SETTINGS, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Organization.objects.get(pk=org.organization.pk).mfa_required


def test_audit_retention_below_a_week_is_refused_by_the_form_and_the_service(org: Org) -> None:
    client = org.client_for("owner")
    response = client.post(
        _url(org, "security_settings_update"), {**SETTINGS, "audit_retention_days": "1"}
    )
    assert response.status_code == 400
    assert "Keep audit events at least 7 days." in response.content.decode()
    with pytest.raises(ValidationError, match="at least 7 days"):
        organization_update_security(
            organization=org.organization, actor=org.owner.user, audit_retention_days=6
        )
    assert Organization.objects.get(pk=org.organization.pk).audit_retention_days == 30
    assert not AuditEvent.objects.filter(action="organization.security.updated").exists()
    organization_update_security(
        organization=org.organization, actor=org.owner.user, audit_retention_days=7
    )
    assert Organization.objects.get(pk=org.organization.pk).audit_retention_days == 7


def test_parse_domains() -> None:
    assert parse_domains(" a.example;B.example.\n\n@c.example a.example ") == [
        "a.example",
        "b.example",
        "c.example",
    ]


def test_changing_settings_asks_for_a_fresh_confirmation(org: Org) -> None:
    client = org.client_for("owner")
    expire_sudo(client)
    response = client.post(_url(org, "security_settings_update"), SETTINGS)
    assert response["Location"].startswith(reverse("accounts:confirm"))
    assert not Organization.objects.get(pk=org.organization.pk).mfa_required


# Enforcement


def test_before_the_deadline_a_member_without_mfa_sees_a_banner(org: Org) -> None:
    _require_mfa(org)
    response = org.client_for("tech").get(_url(org, "dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Acme requires two-step verification" in body
    deadline = membership_mfa_deadline(Membership.objects.get(pk=org.tech.pk))
    assert deadline.strftime("%Y-%m-%d") in body or deadline.strftime("%b") in body


def test_after_the_deadline_a_member_without_mfa_is_locked_and_sent_to_enroll(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=4))
    client = org.client_for("tech")
    for url in (_url(org, "dashboard"), _url(org, "project_list")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:mfa_required"))
        page = client.get(response["Location"])
        assert page.status_code == 200
        body = page.content.decode()
        assert "Acme requires MFA" in body and "Set up an authenticator app" in body
        assert f"next={quote(url, safe='')}" in body
    htmx = client.get(_url(org, "project_list"), HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"].startswith(reverse("accounts:mfa_required"))
    # Not a member: nothing to explain.
    other = reverse("accounts:mfa_required") + "?org=" + str(MembershipFactory().organization_id)
    assert client.get(other).status_code == 404
    assert client.get(reverse("accounts:mfa_required") + "?org=junk").status_code == 404
    # Other organizations and account pages stay open.
    assert client.get(reverse("accounts:mfa")).status_code == 200
    assert client.get(reverse("organizations:list")).status_code == 200


def test_setting_up_mfa_lifts_the_lock(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=4))
    client = org.client_for("tech")
    client.get(reverse("accounts:mfa"))
    device = TOTPDevice.objects.get(user=org.tech.user)
    client.post(reverse("accounts:mfa_confirm"), {"code": code(device)})
    response = client.get(_url(org, "dashboard"))
    assert response.status_code == 200
    assert "requires two-step verification" not in response.content.decode()


def test_owners_are_subject_too_and_can_always_enroll(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=4))
    client = org.client_for("owner")
    assert client.get(_url(org, "dashboard")).status_code == 302
    otp_verify(client, org.owner.user)
    assert client.get(_url(org, "dashboard")).status_code == 200


def test_an_enrolled_member_whose_session_skipped_the_code_is_asked_for_it(org: Org) -> None:
    _require_mfa(org)
    device = enroll(org.tech.user)
    client = org.client_for("tech")
    response = client.get(_url(org, "project_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    client.post(response["Location"], {"code": code(device)})
    assert client.get(_url(org, "project_list")).status_code == 200


def test_new_members_get_their_own_grace_period(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=10))
    newcomer = MembershipFactory(organization=org.organization)
    newcomer.policy_attachments.create(
        policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name="ReadOnlyAccess"),
        organization=org.organization,
    )
    client = Client()
    client.force_login(newcomer.user)
    assert client.get(_url(org, "dashboard")).status_code == 200


def test_no_enforcement_when_mfa_is_not_required(org: Org) -> None:
    response = org.client_for("tech").get(_url(org, "dashboard"))
    assert "requires two-step verification" not in response.content.decode()


@pytest.mark.parametrize("mfa_required", [False, True])
def test_an_organization_page_reads_the_membership_once(org: Org, mfa_required: bool) -> None:
    """The security middleware's membership row serves the view guard too."""
    if mfa_required:
        _require_mfa(org)
    client = org.client_for("tech")
    otp_verify(client, org.tech.user)
    url = _url(org, "project_list")
    client.get(url)  # the once-a-minute session row is written here, not below
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    # One read of the member's memberships (with the switcher's choices).
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "organizations_membership"' in q["sql"]
        and org.tech.user.pk.hex in q["sql"].replace("-", "")
    ]
    assert len(reads) == 1, reads
    # A verified session needs no question about devices beyond django-otp's own read.
    assert sum('"otp_totp_totpdevice"' in q["sql"] for q in queries.captured_queries) == 1


def test_the_browser_flow_signs_in_with_the_code_then_reaches_the_organization(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=4))
    user = org.tech.user
    user.email = "tech@acme.example"
    user.save()
    device = enroll(user)
    client = Client()
    password_step(client, "tech@acme.example")
    client.post(reverse("accounts:mfa_verify"), {"code": code(device)})
    assert client.get(_url(org, "dashboard")).status_code == 200


# Unlock and reset


def test_an_iam_manager_unlocks_a_locked_member(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=4))
    url = _url(org, "member_mfa_unlock", org.tech.pk)
    readonly = org.client_for("readonly")
    otp_verify(readonly, org.readonly.user)
    denied = readonly.post(url)
    assert denied.status_code == 403 and "iam:users:reset-mfa" in denied.content.decode()
    owner = org.client_for("owner")
    otp_verify(owner, org.owner.user)  # the owner is subject to the requirement too
    response = owner.post(url)
    assert response.status_code == 302
    assert response["Location"] == _url(org, "user_detail", org.tech.pk)
    membership = Membership.objects.get(pk=org.tech.pk)
    assert membership.mfa_grace_until > timezone.now() + timedelta(days=2)
    response = org.client_for("tech").get(_url(org, "dashboard"))
    assert response.status_code == 200
    assert "requires two-step verification" in response.content.decode()
    assert AuditEvent.objects.filter(
        action="iam.user.mfa_unlocked", target_id=str(org.tech.user.pk)
    ).exists()


def _iam_manager(org: Org) -> Membership:
    manager = MembershipFactory(organization=org.organization)
    manager.policy_attachments.create(
        policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager"),
        organization=org.organization,
    )
    return manager


def test_only_owners_extend_an_owners_mfa_deadline(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=1))
    manager = _iam_manager(org)
    manager_client = Client()
    manager_client.force_login(manager.user)
    page = manager_client.get(_url(org, "user_detail", org.owner.pk)).content.decode()
    assert "Extend MFA deadline" not in page
    # The tech's page still offers it: the rule is about owners only.
    assert (
        "Extend MFA deadline"
        in manager_client.get(_url(org, "user_detail", org.tech.pk)).content.decode()
    )
    response = manager_client.post(_url(org, "member_mfa_unlock", org.owner.pk), follow=True)
    assert "Only owners can extend the MFA deadline of an owner." in response.content.decode()
    assert Membership.objects.get(pk=org.owner.pk).mfa_grace_until is None
    assert not AuditEvent.objects.filter(action="iam.user.mfa_unlocked").exists()

    second = Client()
    second.force_login(MembershipFactory(organization=org.organization, is_owner=True).user)
    assert (
        "Extend MFA deadline" in second.get(_url(org, "user_detail", org.owner.pk)).content.decode()
    )
    second.post(_url(org, "member_mfa_unlock", org.owner.pk))
    assert Membership.objects.get(pk=org.owner.pk).mfa_grace_until is not None


def test_nobody_extends_their_own_mfa_deadline(org: Org) -> None:
    _require_mfa(org, since=timedelta(days=1))  # still in their grace period
    manager = _iam_manager(org)
    with pytest.raises(ValidationError, match="your account's MFA page"):
        member_mfa_unlock(membership=manager, actor=manager.user, request=None)
    assert Membership.objects.get(pk=manager.pk).mfa_grace_until is None


def test_resetting_a_members_mfa_removes_devices_and_ends_sessions(org: Org) -> None:
    member = MembershipFactory(
        organization=org.organization, user=UserFactory(email="m@acme.example")
    )
    member.user.managed_by = org.organization
    member.user.save()
    device = enroll(member.user)
    member_client = Client()
    password_step(member_client, "m@acme.example")
    member_client.post(reverse("accounts:mfa_verify"), {"code": code(device)})
    assert UserSession.objects.filter(user=member.user).exists()

    response = org.client_for("owner").post(_url(org, "member_mfa_reset", member.pk))
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=member.user).exists()
    assert member_client.get(reverse("organizations:list")).status_code == 302
    event = AuditEvent.objects.get(action="iam.user.mfa_reset")
    assert event.target_id == str(member.user.pk) and event.data["had_mfa"] is True
    assert Membership.objects.get(pk=member.pk).mfa_grace_until is not None


def test_an_iam_manager_cannot_reset_an_owners_mfa_but_another_owner_can(org: Org) -> None:
    manager = _iam_manager(org)
    enroll(org.owner.user)
    manager_client = Client()
    manager_client.force_login(manager.user)
    response = manager_client.post(_url(org, "member_mfa_reset", org.owner.pk), follow=True)
    assert "Only owners can reset the MFA of an owner." in response.content.decode()
    assert TOTPDevice.objects.filter(user=org.owner.user).exists()

    second = MembershipFactory(organization=org.organization, is_owner=True)
    other_owner = Client()
    other_owner.force_login(second.user)
    other_owner.post(_url(org, "member_mfa_reset", org.owner.pk))
    assert not TOTPDevice.objects.filter(user=org.owner.user).exists()


def test_a_guests_mfa_is_theirs(org: Org) -> None:
    enroll(org.tech.user)  # a guest: the account is not managed by Acme
    response = org.client_for("owner").post(_url(org, "member_mfa_reset", org.tech.pk), follow=True)
    assert "is a guest" in response.content.decode()
    assert TOTPDevice.objects.filter(user=org.tech.user).exists()
    assert not AuditEvent.objects.filter(action="iam.user.mfa_reset").exists()


def test_reset_and_unlock_of_another_organizations_member_is_404(org: Org) -> None:
    foreign = MembershipFactory()
    client = org.client_for("owner")
    assert client.post(_url(org, "member_mfa_reset", foreign.pk)).status_code == 404
    assert client.post(_url(org, "member_mfa_unlock", foreign.pk)).status_code == 404


def test_reset_asks_for_a_fresh_confirmation(org: Org) -> None:
    member = MembershipFactory(organization=org.organization)
    member.user.managed_by = org.organization
    member.user.save()
    enroll(member.user)
    client = org.client_for("owner")
    expire_sudo(client)
    response = client.post(_url(org, "member_mfa_reset", member.pk))
    assert response["Location"].startswith(reverse("accounts:confirm"))
    assert TOTPDevice.objects.filter(user=member.user).exists()


def test_nobody_resets_their_own_mfa_from_the_iam_pages(org: Org) -> None:
    manager = MembershipFactory(organization=org.organization)
    manager.user.managed_by = org.organization
    manager.user.save()
    manager.policy_attachments.create(
        policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager"),
        organization=org.organization,
    )
    enroll(manager.user)
    client = Client()
    client.force_login(manager.user)
    response = client.post(_url(org, "member_mfa_reset", manager.pk), follow=True)
    assert "Manage your own MFA from your account" in response.content.decode()
    assert TOTPDevice.objects.filter(user=manager.user).exists()
