from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from audit import events
from audit.chain import HASHED_FIELDS, content_hash
from audit.integrity import verify_chain
from audit.models import AppendOnlyError, AuditEvent
from audit.services import REDACTED, diff, record, record_access_denied, redact
from organizations.models import APIKey
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    AuditEventFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _record(org: Org, **kwargs: object) -> AuditEvent:
    kwargs.setdefault("action", events.PROJECT_CREATED)
    kwargs.setdefault("actor", org.owner.user)
    return record(organization=org.organization, **kwargs)  # type: ignore[arg-type]


def test_events_of_one_organization_form_a_chain(org: Org) -> None:
    first, second = _record(org), _record(org)
    other = record(action=events.PROJECT_CREATED, organization=OrganizationFactory())
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.prev_hash == "" and second.prev_hash == first.hash
    assert other.sequence == 1  # another organization's chain is separate
    stored = AuditEvent.objects.values(*HASHED_FIELDS).get(pk=second.pk)
    assert content_hash(stored) == second.hash
    assert verify_chain(org.organization.pk).ok


def test_result_defaults_to_the_event_type_and_can_be_overridden(org: Org) -> None:
    assert _record(org).result == "success"
    assert _record(org, action=events.ACCESS_DENIED).result == "denied"
    assert _record(org, action=events.ACCOUNT_SIGN_IN_FAILED).result == "failed"
    assert _record(org, result="failed").result == "failed"
    with pytest.raises(ValueError, match="Unknown audit result"):
        _record(org, result="maybe")


def test_request_facts_are_recorded_and_one_request_shares_one_id(org: Org) -> None:
    request = RequestFactory().post(
        "/", REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="curl/8.5", HTTP_X_REQUEST_ID=""
    )
    first, second = _record(org, request=request), _record(org, request=request)
    assert (first.ip, first.user_agent) == ("192.0.2.7", "curl/8.5")
    assert first.request_id and first.request_id == second.request_id
    given = RequestFactory().get("/", HTTP_X_REQUEST_ID="req-42")
    assert _record(org, request=given).request_id == "req-42"


def test_principals_are_users_applications_and_api_keys(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization, name="ci-bot")
    key = APIKey.objects.create(
        organization=org.organization,
        access_key="IAMKTEST0000000001",
        secret_hash="0" * 64,
        bearer_membership=org.tech,
    )
    by_user = _record(org, actor=org.tech)  # a membership stands for its user
    by_app = _record(org, actor=application)
    by_key = _record(org, actor=key)
    by_system = _record(org, actor=None)
    assert (by_user.actor_type, by_user.actor_id) == ("user", str(org.tech.user_id))
    assert (by_app.actor_type, by_app.actor_label) == ("application", "ci-bot")
    assert by_key.actor_type == "api_key" and by_key.actor_user == org.tech.user
    assert "IAMKTEST0000000001" in by_key.actor_label
    assert (by_system.actor_type, by_system.actor_label) == ("", "")


def test_the_actor_label_outlives_the_actor_and_the_chain_stays_valid(org: Org) -> None:
    user = UserFactory(email="gone@example.com")
    event, user_id = _record(org, actor=user), str(user.pk)
    user.delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor_user is None
    assert (event.actor_label, event.actor_id) == ("gone@example.com", user_id)
    assert verify_chain(org.organization.pk).ok


def test_secrets_are_redacted_at_any_depth(org: Org) -> None:
    event = _record(
        org,
        data={
            "password": "hunter22",
            "after": {"name": "ci", "secret_hash": "abc", "token": "t"},
            "keys": [{"access_key": "IAMK1", "secret": "s"}],
            "mfa": {"totp": "123456", "backup_codes": ["a"]},
        },
    )
    assert event.data == {
        "password": REDACTED,
        "after": {"name": "ci", "secret_hash": REDACTED, "token": REDACTED},
        "keys": [{"access_key": "IAMK1", "secret": REDACTED}],
        "mfa": {"totp": REDACTED, "backup_codes": REDACTED},
    }
    assert "hunter22" not in str(AuditEvent.objects.values_list("data", flat=True).get())
    assert redact({"session_max_age_hours": 12}) == {"session_max_age_hours": 12}


def test_diff_keeps_only_changed_fields() -> None:
    before = {"name": "a", "description": "same", "labels": []}
    after = {"name": "b", "description": "same", "labels": ["x"], "new": 1}
    assert diff(before, after) == {
        "before": {"name": "a", "labels": [], "new": None},
        "after": {"name": "b", "labels": ["x"], "new": 1},
    }
    assert diff(before, before) == {"before": {}, "after": {}}


def test_events_cannot_be_updated_or_deleted_in_code(org: Org) -> None:
    event = _record(org)
    event.action = "iam.policy.deleted"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x.y.z")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_create([AuditEvent(action="x.y.z")])
    assert AuditEvent.objects.get(pk=event.pk).action == "projects.project.created"


def test_a_rolled_back_change_leaves_no_event_and_no_gap(org: Org) -> None:
    _record(org)
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(org)
        raise RuntimeError("the change failed")
    assert _record(org).sequence == 2
    assert verify_chain(org.organization.pk).ok


def test_denials_are_recorded_once_per_principal_permission_and_minute(org: Org) -> None:
    cache.clear()
    request = RequestFactory().get("/")

    def deny(permission: str, who: object = None) -> AuditEvent | None:
        return record_access_denied(
            organization=org.organization,
            actor=who or org.readonly.user,
            permission=permission,
            request=request,
        )

    assert deny("billing:invoices:list") is not None
    assert deny("billing:invoices:list") is None  # same principal, same permission
    assert deny("iam:users:list") is not None
    assert deny("billing:invoices:list", org.tech.user) is not None
    cache.clear()  # another process: its cache is empty, the database still knows
    assert deny("billing:invoices:list") is None
    assert AuditEvent.objects.filter(action=events.ACCESS_DENIED.name).count() == 3


def test_a_denial_is_recorded_again_after_the_window(org: Org) -> None:
    cache.clear()
    AuditEventFactory(
        organization=org.organization,
        action=events.ACCESS_DENIED.name,
        actor_type="user",
        actor_id=str(org.readonly.user_id),
        target_label="billing:invoices:list",
        occurred_at=timezone.now() - dt.timedelta(minutes=2),
    )
    event = record_access_denied(
        organization=org.organization, actor=org.readonly.user, permission="billing:invoices:list"
    )
    assert event is not None and event.result == "denied"


def test_a_forbidden_page_in_a_loop_records_one_denial(org: Org) -> None:
    cache.clear()
    client = org.client_for("readonly")
    url = f"/o/{org.organization.pk}/audit/"
    assert [client.get(url).status_code for _ in range(5)] == [403] * 5
    denied = AuditEvent.objects.filter(action="authz.access.denied")
    assert denied.count() == 1
    assert denied.get().target_label == "audit:events:list"


def test_event_names_follow_the_service_resource_verb_scheme() -> None:
    for event_type in events.all_types():
        service, resource, verb = event_type.name.split(".")
        assert service and resource and verb
    with pytest.raises(ValueError, match=r"service\.resource\.verb"):
        events.register("badname", "x")
    with pytest.raises(ValueError, match="registered twice"):
        events.register(events.PROJECT_CREATED.name, "x")
