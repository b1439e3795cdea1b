"""Permission usage (#16): every guard's and the authorize API's decision is noted in
memory and written in batches, one upsert statement a batch keeping the latest times;
effective permissions say when each action was last used; the unused-access report lists
what went unused."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import DatabaseError, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from policies import usage
from policies.authz import authorize
from policies.models import NO_PROJECT, PermissionUsage, Rule
from tests.api.conftest import API, allow, key_token
from tests.conftest import Org
from tests.factories import ApplicationFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
ORG_READ = "organization:organization:read"  # tech holds it (TechAccess)
INVOICE_READ = "billing:invoices:read"  # tech does not


@pytest.fixture
def batched(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Notes wait in memory until a test flushes them (no flushing thread)."""
    settings.USAGE_FLUSH_SECONDS = 60
    monkeypatch.setattr(usage, "_start_flusher", lambda seconds: None)
    usage.forget()
    yield
    usage.forget()


@pytest.fixture
def noting(settings) -> Iterator[None]:
    """Every note written at once, as the test settings' None (off) would not."""
    settings.USAGE_FLUSH_SECONDS = 0
    usage.forget()
    yield
    usage.forget()


def rows_of(org: Org, principal_id: object) -> dict[tuple[str, uuid.UUID], PermissionUsage]:
    rows = PermissionUsage.objects.filter(organization=org.organization, principal_id=principal_id)
    return {(row.action, row.project_id): row for row in rows}


# ------------------------------------------------------------------------ note and flush


def test_note_and_flush_create_then_update_rows_keeping_the_latest_times(
    org: Org, batched: None
) -> None:
    organization, user_id = org.organization.pk, org.tech.user_id
    project = ProjectFactory(organization=org.organization)
    usage.note(organization, "user", user_id, ORG_READ, None, True, T0)
    usage.note(organization, "user", user_id, ORG_READ, None, False, T0 + dt.timedelta(hours=1))
    usage.note(organization, "user", user_id, "compute:instances:read", project.pk, True, T0)
    assert not PermissionUsage.objects.exists()  # nothing written before a flush
    assert usage.flush() == 2
    rows = rows_of(org, user_id)
    assert rows[(ORG_READ, NO_PROJECT)].last_allowed_at == T0
    assert rows[(ORG_READ, NO_PROJECT)].last_denied_at == T0 + dt.timedelta(hours=1)
    assert rows[("compute:instances:read", project.pk)].last_denied_at is None

    # A later allow moves it; an earlier denial (a slower process' note) does not.
    usage.note(organization, "user", user_id, ORG_READ, None, True, T0 + dt.timedelta(days=2))
    usage.note(organization, "user", user_id, ORG_READ, None, False, T0 - dt.timedelta(days=1))
    assert usage.flush() == 1
    row = rows_of(org, user_id)[(ORG_READ, NO_PROJECT)]
    assert row.last_allowed_at == T0 + dt.timedelta(days=2)
    assert row.last_denied_at == T0 + dt.timedelta(hours=1)
    assert PermissionUsage.objects.count() == 2


def test_noting_costs_no_query_and_many_notes_flush_in_one_statement(
    org: Org, batched: None, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        for index in range(500):
            usage.note(org.organization.pk, "user", uuid.uuid4(), ORG_READ, None, index % 2, T0)
    with CaptureQueriesContext(connection) as captured:
        assert usage.flush() == 500
    inserts = [q for q in captured.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    assert PermissionUsage.objects.count() == 500
    assert usage.pending_count() == 0


def test_a_failing_flush_keeps_its_rows_for_the_next(
    org: Org, batched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage.note(org.organization.pk, "user", org.tech.user_id, ORG_READ, None, True, T0)

    def broken(batch: object) -> None:
        raise DatabaseError("the database is away")

    with monkeypatch.context() as patch:
        patch.setattr(usage, "_write", broken)
        assert usage.flush() == 0  # logged, never raised
    assert usage.pending_count() == 1
    later = T0 + dt.timedelta(minutes=1)
    usage.note(org.organization.pk, "user", org.tech.user_id, ORG_READ, None, True, later)
    assert usage.flush() == 1
    [row] = PermissionUsage.objects.all()
    assert row.last_allowed_at == later


def test_the_suite_notes_nothing_by_default(org: Org) -> None:
    org.client_for("tech").get(reverse("organizations:dashboard", args=[org.organization.pk]))
    assert usage.pending_count() == 0
    assert not PermissionUsage.objects.exists()


# ------------------------------------------------------------------------------- hooks


def guarded_request(org: Org, membership: object) -> object:
    request = RequestFactory().get("/")
    request.user = membership.user  # type: ignore[attr-defined]
    request.session = {}
    request.organization = org.organization
    request.membership = membership
    return request


def test_the_guards_note_allowed_and_denied_decisions(org: Org, noting: None) -> None:
    request = guarded_request(org, org.tech)
    assert authorize(request, ORG_READ).allowed
    assert not authorize(request, INVOICE_READ).allowed
    assert not authorize(request, "no:such:action").allowed  # not usage of anything
    rows = rows_of(org, org.tech.user_id)
    assert set(rows) == {(ORG_READ, NO_PROJECT), (INVOICE_READ, NO_PROJECT)}
    assert rows[(ORG_READ, NO_PROJECT)].last_allowed_at is not None
    assert rows[(ORG_READ, NO_PROJECT)].last_denied_at is None
    assert rows[(INVOICE_READ, NO_PROJECT)].last_denied_at is not None
    # Owners' decisions are usage too.
    assert authorize(guarded_request(org, org.owner), INVOICE_READ).allowed
    assert rows_of(org, org.owner.user_id)[(INVOICE_READ, NO_PROJECT)].last_allowed_at


def test_console_pages_note_their_guard(org: Org, noting: None) -> None:
    response = org.client_for("tech").get(
        reverse("organizations:dashboard", args=[org.organization.pk])
    )
    assert response.status_code == 200
    assert rows_of(org, org.tech.user_id)


def test_the_authorize_api_notes_each_question_for_its_principal(org: Org, noting: None) -> None:
    service = ApplicationFactory(organization=org.organization, name="platform")
    allow(service, "iam:authorize:check", scope=Rule.Scope.ORGANIZATION)
    api = API(key_token(service, org.owner))
    project = ProjectFactory(organization=org.organization)
    questions = [
        {"principal": {"type": "user", "id": str(org.tech.user_id)}, "action": ORG_READ},
        {"principal": {"type": "user", "id": str(org.tech.user_id)}, "action": INVOICE_READ},
        {
            "principal": {"type": "user", "id": str(org.billing.user_id)},
            "action": "compute:instances:read",
            "project": str(project.pk),
        },
    ]
    response = api.post("/authorize", {"questions": questions})
    assert response.status_code == 200, response.content
    tech = rows_of(org, org.tech.user_id)
    assert tech[(ORG_READ, NO_PROJECT)].last_allowed_at is not None
    assert tech[(INVOICE_READ, NO_PROJECT)].last_denied_at is not None
    billing = rows_of(org, org.billing.user_id)
    assert billing[("compute:instances:read", project.pk)].last_denied_at is not None
    # The calling key's own guard is the service's usage.
    assert rows_of(org, service.pk)[("iam:authorize:check", NO_PROJECT)].last_allowed_at


def test_viewing_as_someone_notes_nothing(org: Org, noting: None) -> None:
    client = org.client_for("owner")
    start = reverse("iamtools:view_as_user", args=[org.organization.pk, org.billing.pk])
    assert client.post(start).status_code == 302
    PermissionUsage.objects.all().delete()
    response = client.get(reverse("organizations:dashboard", args=[org.organization.pk]))
    assert response.status_code == 200
    assert not PermissionUsage.objects.exists()


# ----------------------------------------------------------------- effective permissions


def test_effective_permissions_say_when_each_action_was_last_used(
    org: Org, batched: None, django_assert_max_num_queries
) -> None:
    organization, user_id = org.organization.pk, org.tech.user_id
    now = timezone.now()
    usage.note(organization, "user", user_id, ORG_READ, None, True, now)
    usage.note(organization, "user", user_id, "iam:users:read", None, True, now)
    usage.flush()
    # Denials are not use; the latest allow in any project counts.
    usage.note(organization, "user", user_id, "iam:users:list", None, False, now)
    usage.note(
        organization, "user", user_id, "iam:users:read", None, True, now - dt.timedelta(days=12)
    )
    usage.note(
        organization, "user", user_id, "iam:groups:list", None, True, now - dt.timedelta(days=12)
    )
    usage.flush()
    url = reverse("iamtools:effective_permissions", args=[organization, org.tech.pk])
    body = org.client_for("owner").get(url).content.decode()

    def used(action: str) -> str:
        """The action's row of the summary of actions held (or of the grants)."""
        marks = (f'<code class="action">{action}</code>', f"<tr><td><code>{action}</code></td>")
        start = next(body.index(mark) for mark in marks if mark in body)
        return body[start : body.index("</tr>", start)]

    assert "<td>Used today</td>" in used(ORG_READ)
    assert "<td>Used today</td>" in used("iam:users:read")
    assert "<td>Used 12 days ago</td>" in used("iam:groups:list")
    assert "<td>Never used</td>" in used("iam:users:list")


def test_used_words() -> None:
    now = timezone.now()
    assert usage.used_words(None, now) == "never used"
    assert usage.used_words(now, now) == "used today"
    assert usage.used_words(now - dt.timedelta(days=1), now) == "used yesterday"
    assert usage.used_words(now - dt.timedelta(days=30), now) == "used 30 days ago"


# ------------------------------------------------------------------------ unused access


def test_unused_access_lists_what_went_unused_for_n_days(org: Org, batched: None) -> None:
    organization = org.organization.pk
    usage.note(organization, "user", org.billing.user_id, "billing:invoices:list", None, True)
    usage.note(
        organization,
        "user",
        org.billing.user_id,
        "billing:invoices:read",
        None,
        True,
        timezone.now() - dt.timedelta(days=40),
    )
    usage.flush()
    url = reverse("iamtools:unused_access", args=[organization])
    client = org.client_for("owner")
    body = client.get(url, {"q": org.billing.user.email, "days": "30"}).content.decode()
    assert org.billing.user.email in body
    assert "<code>billing:invoices:list</code>" not in body
    assert "<code>billing:invoices:read</code> · last used" in body
    assert "<code>billing:contact:read</code> · never used" in body
    assert org.tech.user.email not in body  # searched away
    body = client.get(url, {"q": org.billing.user.email, "days": "60"}).content.decode()
    assert "<code>billing:invoices:read</code>" not in body
    # Owners are left out; a member with no policy holds nothing.
    idle = MembershipFactory(organization=org.organization)
    response = client.get(url)
    labels = [row.label for row in response.context["rows"]]
    assert org.owner.user.email not in labels
    assert idle.user.email in labels
    assert "Holds nothing" in response.content.decode()


def test_unused_access_needs_the_simulator(org: Org) -> None:
    url = reverse("iamtools:unused_access", args=[org.organization.pk])
    assert org.client_for("billing").get(url).status_code == 403
    assert org.client_for("owner").get(url).status_code == 200


def test_unused_access_pages_25_principals(org: Org, django_assert_max_num_queries) -> None:
    for _ in range(30):
        MembershipFactory(organization=org.organization)
    url = reverse("iamtools:unused_access", args=[org.organization.pk])
    client = org.client_for("owner")
    client.get(url)  # warm: compiled rules are remembered
    with django_assert_max_num_queries(45) as captured:
        response = client.get(url)
    assert response.context["page"].paginator.count == 33
    assert len(response.context["rows"]) == 25
    # The principals are paged by the database (a count, then one page), not all read.
    candidates = [q["sql"] for q in captured.captured_queries if 'AS "sort"' in q["sql"]]
    assert len(candidates) == 2 and "LIMIT 25" in candidates[-1]


# --------------------------------------------------------------------- two processes

CHILD = """
import datetime as dt, os, sys, uuid
import django
django.setup()
from django.conf import settings
from policies import usage
settings.USAGE_FLUSH_SECONDS = 60
usage._start_flusher = lambda seconds: None
organization, principal, allowed, denied = sys.argv[1:5]
for _ in range(50):
    usage.note(organization, "user", principal, "compute:instances:read", None, True,
               dt.datetime.fromisoformat(allowed))
    usage.note(organization, "user", principal, "compute:instances:read", None, False,
               dt.datetime.fromisoformat(denied))
    assert usage.flush() == 1
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_upsert_one_row_with_the_latest_of_each(org: Org) -> None:
    parts = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    database = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DATABASE_URL": urllib.parse.urlunsplit(parts._replace(path=f"/{database}")),
        "DJANGO_SETTINGS_MODULE": "iamportal.test_settings",
    }
    hour = dt.timedelta(hours=1)
    times = [(T0 + hour, T0 + 5 * hour), (T0 + 3 * hour, T0 + 2 * hour)]
    children = [
        subprocess.Popen(  # our own interpreter, fixed arguments
            [
                sys.executable,
                "-c",
                textwrap.dedent(CHILD),
                str(org.organization.pk),
                str(org.tech.user_id),
                allowed.isoformat(),
                denied.isoformat(),
            ],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
        for allowed, denied in times
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    [row] = PermissionUsage.objects.filter(principal_id=org.tech.user_id)
    assert row.last_allowed_at == T0 + 3 * hour
    assert row.last_denied_at == T0 + 5 * hour
