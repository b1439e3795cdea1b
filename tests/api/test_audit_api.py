"""The audit trail through the API: the console's filters, cursor paging, one event, and
exports, each decided by the same permissions as the console's pages."""

from __future__ import annotations

import json

import pytest

from audit import events
from audit.models import AuditEvent
from audit.services import record
from tests.api.conftest import API, key_token
from tests.conftest import Org
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(org: Org) -> list[AuditEvent]:
    return [
        record(
            action=events.PROJECT_CREATED,
            organization=org.organization,
            actor=org.owner.user,
            target_label=f"project-{n}",
        )
        for n in range(5)
    ]


def _owner(org: Org) -> API:
    return API(key_token(org.owner, org.owner))


def test_the_trail_pages_newest_first_with_a_cursor(org: Org, trail: list[AuditEvent]) -> None:
    api = _owner(org)
    first = api.get("/audit/events?limit=2&action=projects.*")
    assert first.status_code == 200
    body = first.json()
    assert [e["target_label"] for e in body["events"]] == ["project-4", "project-3"]
    second = api.get(f"/audit/events?limit=2&action=projects.*&cursor={body['next']}").json()
    assert [e["target_label"] for e in second["events"]] == ["project-2", "project-1"]
    last = api.get(f"/audit/events?limit=2&action=projects.*&cursor={second['next']}").json()
    assert [e["target_label"] for e in last["events"]] == ["project-0"]
    assert last["next"] is None


def test_one_event_and_another_organizations_are_404(org: Org, trail: list[AuditEvent]) -> None:
    api = _owner(org)
    event = trail[0]
    response = api.get(f"/audit/events/{event.public_id}")
    assert response.status_code == 200
    assert response.json()["hash"] == event.hash
    elsewhere = MembershipFactory(is_owner=True)
    foreign = API(key_token(elsewhere, elsewhere))
    assert foreign.get(f"/audit/events/{event.public_id}").status_code == 404
    assert foreign.get("/audit/events?action=projects.*").json()["events"] == []


def test_a_filter_the_console_refuses_is_a_400_naming_it(org: Org) -> None:
    response = _owner(org).get("/audit/events?principal=nobody")
    assert response.status_code == 400
    assert "principal" in response.json()["error"]["details"]


def test_exports_stream_json_lines_and_csv_and_are_recorded_as_the_key(
    org: Org, trail: list[AuditEvent]
) -> None:
    api = _owner(org)
    response = api.get("/audit/events/export?format=jsonl&action=projects.*")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert {line["target_label"] for line in lines} == {f"project-{n}" for n in range(5)}
    exported = AuditEvent.objects.get(action=events.AUDIT_EXPORTED.name)
    assert exported.actor_type == AuditEvent.ActorType.API_KEY
    csv = api.get("/audit/events/export?format=csv")
    assert b"".join(csv.streaming_content).startswith(b"occurred_at,action")


@pytest.mark.parametrize(
    ("who", "listing", "exporting"),
    [("owner", 200, 200), ("tech", 403, 403), ("billing", 403, 403), ("readonly", 403, 403)],
)
def test_the_trail_follows_the_role_matrix(
    org: Org, who: str, listing: int, exporting: int
) -> None:
    persona = getattr(org, who)
    api = API(key_token(persona, persona))
    response = api.get("/audit/events")
    assert response.status_code == listing
    if listing == 403:
        assert "audit:events:list" in response.json()["error"]["message"]
    assert api.get("/audit/events/export").status_code == exporting
