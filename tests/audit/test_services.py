from __future__ import annotations

import datetime as dt
import ipaddress

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
from iamportal.request import client_ip, client_user_agent, request_id
from organizations.models import APIKey
from tests.conftest import Org
from tests.factories import (
    APIKeyFactory,
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


PROXIES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "2001:db8::/32"))


def _ip(remote: str, forwarded: str | None = None) -> str | None:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **headers))


def test_without_trusted_proxies_the_peer_is_the_client(settings) -> None:
    settings.TRUSTED_PROXIES = ()
    assert _ip("203.0.113.5") == "203.0.113.5"
    assert _ip("10.0.0.1", "203.0.113.5") == "10.0.0.1"


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(settings) -> None:
    settings.TRUSTED_PROXIES = PROXIES
    assert _ip("198.51.100.9", "10.0.0.7, 203.0.113.5") == "198.51.100.9"


def test_behind_trusted_proxies_the_right_most_untrusted_address_is_the_client(
    settings,
) -> None:
    settings.TRUSTED_PROXIES = PROXIES
    assert _ip("10.0.0.1") == "10.0.0.1"  # no header: the proxy itself
    assert _ip("10.0.0.1", "203.0.113.5") == "203.0.113.5"
    # The client wrote the left part: only what trusted hops appended counts.
    assert _ip("10.0.0.1", "192.0.2.66, 203.0.113.5, 10.2.3.4") == "203.0.113.5"
    assert _ip("2001:db8::1", "2001:db9::5, 2001:db8::2") == "2001:db9::5"
    assert _ip("::ffff:10.0.0.1", "203.0.113.5") == "203.0.113.5"
    # Every hop trusted: the left-most of them.
    assert _ip("10.0.0.1", "10.9.9.9, 10.0.0.2") == "10.9.9.9"


def test_a_malformed_forwarded_for_entry_stops_at_the_last_good_address(settings) -> None:
    settings.TRUSTED_PROXIES = PROXIES
    assert _ip("10.0.0.1", "junk") == "10.0.0.1"
    assert _ip("10.0.0.1", "203.0.113.5, 10.0.0.9:443") == "10.0.0.1"
    assert _ip("10.0.0.1", "203.0.113.5, not-an-ip, 10.0.0.9") == "10.0.0.9"
    assert _ip("10.0.0.1", "203.0.113.5,,") == "10.0.0.1"
    assert _ip("not-an-address", "203.0.113.5") is None


def test_the_client_ip_feeds_lock_out_and_audit(settings, org: Org) -> None:
    settings.TRUSTED_PROXIES = PROXIES
    request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    from accounts.lockout import attempt_ip

    assert attempt_ip(request) == "203.0.113.5"
    assert _record(org, request=request).ip == "203.0.113.5"


@pytest.mark.parametrize(
    "given", ["req\r\nX-Evil: 1", "a" * 65, "", "id with spaces", "\u00e9t\u00e9"]
)
def test_an_unsafe_request_id_is_replaced(given: str) -> None:
    request = RequestFactory().get("/", HTTP_X_REQUEST_ID=given)
    made_up = request_id(request)
    assert made_up != given and len(made_up) == 32 and made_up.isalnum()
    assert request_id(request) == made_up  # one id per request


def test_a_safe_request_id_is_kept() -> None:
    given = "1-67891233:abcdef_012.x-" + "9" * 40
    assert request_id(RequestFactory().get("/", HTTP_X_REQUEST_ID=given)) == given


def test_the_stored_user_agent_is_one_bounded_line() -> None:
    request = RequestFactory().get("/", HTTP_USER_AGENT="Mozilla\x00/5.0\r\n(X11)\x1b" + "x" * 900)
    agent = client_user_agent(request)
    assert agent.startswith("Mozilla /5.0 (X11) x")
    assert len(agent) == 512 and agent.isprintable()


@pytest.mark.postgres
def test_a_nul_in_the_user_agent_is_recorded_on_postgresql(org: Org) -> None:
    request = RequestFactory().get("/", HTTP_USER_AGENT="Mozilla\x00")
    assert _record(org, request=request).user_agent == "Mozilla"


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


def test_a_change_made_through_the_api_is_the_keys(org: Org) -> None:
    """Services name the bearer as actor; the request knows the key, which is recorded."""
    api_key = APIKeyFactory(
        organization=org.organization, bearer_application=None, bearer_membership=org.tech
    )
    request = RequestFactory().post("/api/v1/groups")
    request.api_key = api_key
    event = record(
        action=events.GROUP_CREATED,
        organization=org.organization,
        actor=org.tech.user,
        request=request,
    )
    assert event.actor_type == AuditEvent.ActorType.API_KEY
    assert event.actor_id == str(api_key.pk)
    assert event.actor_user == org.tech.user
    assert event.actor_label == f"API key {api_key.access_key}"
