from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.services import record
from tests.conftest import Org, assert_access
from tests.factories import AuditEventFactory, OrganizationFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def url(org: Org, name: str = "event_list", *args: object) -> str:
    return reverse(f"audit:{name}", args=[org.organization.pk, *args])


def _event(org: Org, action: events.EventType = events.PROJECT_CREATED, **kw: object) -> AuditEvent:
    kw.setdefault("actor", org.owner.user)
    return record(action=action, organization=org.organization, **kw)  # type: ignore[arg-type]


def _actions(response: object) -> list[str]:
    return [event.action for event in response.context["page"]]  # type: ignore[attr-defined]


def test_only_audit_readers_see_the_trail(org: Org) -> None:
    expected = {"owner": 200, "tech": 403, "billing": 403, "readonly": 403, "outsider": 404}
    assert_access(org, "get", url(org), expected)
    assert_access(org, "get", url(org, "event_export", "csv"), expected)


def test_the_trail_shows_a_change_at_once_newest_first(owner_client: Client, org: Org) -> None:
    owner_client.post(
        reverse("organizations:project_create", args=[org.organization.pk]), {"name": "web"}
    )
    _event(org, events.POLICY_CREATED)
    response = owner_client.get(url(org))
    assert _actions(response)[:2] == ["iam.policy.created", "projects.project.created"]
    assert "web" in response.content.decode()


def test_filters_narrow_the_trail(owner_client: Client, org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="api")
    _event(org, events.PROJECT_UPDATED, target=project)
    _event(org, events.POLICY_CREATED, actor=org.tech.user, target_label="Devs")
    _event(org, events.ACCESS_DENIED, actor=org.readonly.user, target_label="iam:users:list")
    _event(org, events.ACCOUNT_SIGN_IN_FAILED, actor=None, target_label="x@example.com")
    other = AuditEventFactory(organization=OrganizationFactory(), action="iam.policy.created")

    def actions(**params: str) -> list[str]:
        response = owner_client.get(url(org), params)
        assert response.status_code == 200
        return _actions(response)

    assert actions(action="iam.policy.created") == ["iam.policy.created"]
    assert actions(action="iam.*") == ["iam.policy.created"]
    # The owner's client signed in first: sign-ins reach the trail (accounts.trail).
    assert actions(action="auth.*") == ["auth.login.failed", "auth.login.succeeded"]
    assert actions(principal=f"user:{org.tech.user_id}") == ["iam.policy.created"]
    assert actions(principal="system") == ["auth.login.failed"]
    assert actions(result="denied") == ["authz.access.denied"]
    assert actions(result="failed") == ["auth.login.failed"]
    assert actions(target=str(project.pk)) == ["projects.project.updated"]
    assert actions(target="Devs") == ["iam.policy.created"]
    assert actions(target_type="organizations.project") == ["projects.project.updated"]
    tomorrow = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert actions(since=tomorrow) == []
    assert len(actions(until=tomorrow)) == 5
    assert other.action not in actions(target=str(other.public_id))


def test_bad_filter_input_is_refused_politely(owner_client: Client, org: Org) -> None:
    _event(org)
    for params in (
        {"since": "yesterday"},
        {"principal": "root"},
        {"action": "drop table"},
        {"since": "2030-01-02T00:00", "until": "2030-01-01T00:00"},
        {"older": "garbage"},
        {"newer": "1_x"},
        {"target": "x" * 400},
    ):
        response = owner_client.get(url(org), params)
        assert response.status_code == 200, params
    response = owner_client.get(url(org), {"since": "2030-01-02T00:00", "until": "2030-01-01"})
    assert "must come after its start" in response.content.decode()


def test_a_deleted_principal_can_still_be_filtered(owner_client: Client, org: Org) -> None:
    AuditEventFactory(organization=org.organization, actor_type="user", actor_id="123")
    response = owner_client.get(url(org), {"principal": "user:123"})
    assert len(response.context["page"]) == 1
    assert 'name="principal" value="user:123"' in response.content.decode()


def test_htmx_filtering_returns_only_the_results(owner_client: Client, org: Org) -> None:
    _event(org)
    response = owner_client.get(
        url(org),
        {"action": "projects.*"},
        headers={"HX-Request": "true", "HX-Target": "audit-results"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "audit-filters" not in html
    assert "projects.project.created" in html
    assert "export.csv?action=projects.%2A" in html  # the export keeps the filters


def test_keyset_pages_walk_older_and_back_newer(owner_client: Client, org: Org) -> None:
    now = timezone.now()
    for n in range(120):  # ties on the time are settled by the id
        AuditEventFactory(
            organization=org.organization, occurred_at=now - dt.timedelta(seconds=n // 3)
        )
    first = owner_client.get(url(org)).context["page"]
    second = owner_client.get(url(org), {"older": first.older}).context["page"]
    third = owner_client.get(url(org), {"older": second.older}).context["page"]
    assert [len(first), len(second), len(third)] == [50, 50, 21]  # and the owner's sign-in
    assert third.older is None and first.newer is None and not second.is_first
    seen = [e.pk for page in (first, second, third) for e in page]
    expected = list(
        AuditEvent.objects.filter(organization=org.organization).values_list("pk", flat=True)
    )
    assert seen == expected  # all, once each, in the trail's order
    back = owner_client.get(url(org), {"newer": third.newer}).context["page"]
    assert [e.pk for e in back] == [e.pk for e in second]
    assert owner_client.get(url(org), {"newer": back.newer}).context["page"].is_first


def test_the_trail_page_runs_a_constant_number_of_queries(
    owner_client: Client, org: Org, django_assert_max_num_queries: object
) -> None:
    def count() -> int:
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert owner_client.get(url(org)).status_code == 200
        return len(queries)

    AuditEventFactory.create_batch(2, organization=org.organization)
    count()  # warm up: the first request of a session does one-time work
    few = count()
    AuditEventFactory.create_batch(40, organization=org.organization)
    assert count() == few
    assert few <= 12


def test_an_event_shows_who_what_where_and_the_changes(owner_client: Client, org: Org) -> None:
    project = ProjectFactory(organization=org.organization, name="old", description="")
    owner_client.post(
        reverse("organizations:project_update", args=[org.organization.pk, project.pk]),
        {"name": "new", "description": ""},
        REMOTE_ADDR="198.51.100.4",
        HTTP_USER_AGENT="Firefox/128",
    )
    event = AuditEvent.objects.get(action="projects.project.updated")
    assert event.data == {"before": {"name": "old"}, "after": {"name": "new"}}
    html = owner_client.get(url(org, "event_detail", event.public_id)).content.decode()
    for text in (
        "old",
        "new",
        "198.51.100.4",
        "Firefox/128",
        event.request_id,
        org.owner.user.email,
    ):
        assert text in html, text
    assert "audit-changed" in html


def test_another_organizations_event_is_not_found(owner_client: Client, org: Org) -> None:
    foreign = AuditEventFactory(organization=OrganizationFactory())
    assert owner_client.get(url(org, "event_detail", foreign.public_id)).status_code == 404


def test_exports_stream_the_filtered_events(owner_client: Client, org: Org) -> None:
    _event(org, events.PROJECT_CREATED, target_label="=HYPERLINK(1)")
    _event(org, events.POLICY_CREATED, target_label="Devs")
    response = owner_client.get(url(org, "event_export", "csv"), {"action": "projects.*"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["projects.project.created"]
    assert rows[0]["target_label"] == "'=HYPERLINK(1)"  # not a formula in a spreadsheet
    response = owner_client.get(url(org, "event_export", "jsonl"))
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["action"] for line in lines] == [
        "audit.trail.exported",  # the CSV export above: exports are recorded too
        "iam.policy.created",
        "projects.project.created",
        "auth.login.succeeded",  # the owner's client signing in
    ]
    assert {"occurred_at", "actor_label", "data", "hash", "ip"} <= set(lines[0])
    exported = AuditEvent.objects.filter(action="audit.trail.exported")
    assert exported.count() == 2 and exported.first().actor_user == org.owner.user
    assert owner_client.get(url(org, "event_export", "xml")).status_code == 404


def test_owners_verify_the_chain_from_the_trail(owner_client: Client, org: Org) -> None:
    _event(org)
    _event(org)
    response = owner_client.post(url(org, "verify"))
    assert response.status_code == 200 and "Intact" in response.content.decode()
    victim = AuditEvent.objects.filter(organization=org.organization).order_by("sequence").first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_label = 'x' WHERE id = %s", [victim.pk])
    response = owner_client.post(url(org, "verify"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "Broken" in html and "event #1" in html and "<html" not in html
    verified = AuditEvent.objects.filter(action="audit.trail.verified").order_by("sequence")
    assert [e.result for e in verified] == ["success", "failed"]


def test_only_owners_may_verify(org: Org) -> None:
    expected = {"owner": 200, "tech": 403, "readonly": 403, "outsider": 404}
    assert_access(org, "post", url(org, "verify"), expected)
    assert org.client_for("owner").get(url(org, "verify")).status_code == 405
