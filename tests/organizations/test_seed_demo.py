from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from organizations.models import (
    APIKey,
    Group,
    Invitation,
    Invoice,
    Membership,
    Organization,
    Project,
    Resource,
)

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_is_idempotent_and_prints_working_logins() -> None:
    first = _seed()
    counts = (
        User.objects.count(),
        Organization.objects.count(),
        Membership.objects.count(),
        Project.objects.count(),
        Invoice.objects.count(),
        Group.objects.count(),
        APIKey.objects.count(),
        Invitation.objects.count(),
    )
    second = _seed()
    assert counts == (
        User.objects.count(),
        Organization.objects.count(),
        Membership.objects.count(),
        Project.objects.count(),
        Invoice.objects.count(),
        Group.objects.count(),
        APIKey.objects.count(),
        Invitation.objects.count(),
    )
    # The application's token is printed once, when its key is created, with a curl line.
    assert "API key token for ci-deployer (shown once):" in first and "API key" not in second
    assert "curl -s -X POST http://127.0.0.1:8000/api/v1/authorize" in first
    assert first.split("\n", 2)[2] == second
    for email in ("owner@", "tech@", "billing@", "readonly@", "iam@", "member@", "scoped@"):
        assert email in first
    acme = Organization.objects.get(name="Acme Cloud")
    assert acme.memberships.count() == 7
    assert set(acme.groups.values_list("name", flat=True)) == {"Developers", "Finance"}
    assert acme.projects.count() == 4
    assert acme.invoices.count() == 12


def test_seeded_personas_see_what_their_role_allows() -> None:
    _seed()
    acme = Organization.objects.get(name="Acme Cloud")
    expectations = {
        "owner@acme.example": {"billing": 200, "users": 200, "audit": 200},
        "tech@acme.example": {"billing": 403, "users": 200, "audit": 403},
        "billing@acme.example": {"billing": 200, "users": 403, "audit": 403},
        "readonly@acme.example": {"billing": 403, "users": 200, "audit": 403},
        "iam@acme.example": {"billing": 403, "users": 200, "audit": 200},
    }
    for email, expected in expectations.items():
        client = Client()
        password = f"demo-{email.split('@')[0]}-2026"
        assert client.login(username=email, password=password), email
        seen = {
            "billing": client.get(f"/o/{acme.pk}/billing/").status_code,
            "users": client.get(f"/o/{acme.pk}/iam/users/").status_code,
            "audit": client.get(f"/o/{acme.pk}/audit/").status_code,
        }
        assert seen == expected, email


def test_the_printed_curl_line_asks_the_authorize_endpoint() -> None:
    output = _seed()
    line = next(line for line in output.splitlines() if "curl -s -X POST" in line)
    token = re.search(r"Authorization: Bearer (\S+)'", line).group(1)
    body = re.search(r"-d '(.+)'$", line).group(1)
    response = Client().post(
        "/api/v1/authorize",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["decisions"][0]["allowed"] is True  # tech may create projects
    _seed()  # a rerun keeps the one grant of iam:authorize:check
    acme = Organization.objects.get(name="Acme Cloud")
    authorizer = acme.applications.get(name="ci-deployer").policy_attachments.get()
    assert authorizer.policy.name == "platform-authorizer"


def test_the_scoped_user_lists_instances_in_the_first_project_only() -> None:
    """Scaleway's "list instances in Project A only", in the console, then by tag."""
    output = _seed()
    assert "scoped@acme.example" in output and "instances in web-frontend only" in output
    _seed()  # a rerun keeps one attachment of each policy and the team tag
    acme = Organization.objects.get(name="Acme Cloud")
    scoped = acme.memberships.get(user__email="scoped@acme.example")
    assert scoped.tags == {"team": "web"}
    assert sorted(a.policy.name for a in scoped.policy_attachments.all()) == [
        "Instances in web-frontend only",
        "Team instances",
    ]
    client = Client()
    assert client.login(username="scoped@acme.example", password="demo-scoped-2026")

    def instances(project: str) -> int:
        project_id = acme.projects.get(name=project).pk
        path = f"/o/{acme.pk}/projects/{project_id}/resources/compute:instances/"
        return client.get(path).status_code

    assert instances("web-frontend") == 200
    assert instances("data-pipeline") == 403
    assert instances("staging") == 403

    def resource(name: str) -> int:
        found = Resource.objects.get(organization=acme, name=name)
        return client.get(f"/o/{acme.pk}/resources/{found.pk}/").status_code

    # Listing is decided on the project; reading one instance also by its team tag.
    assert (resource("web-1"), resource("web-staging-1")) == (200, 200)
    assert (resource("etl-worker-1"), resource("etl-staging-1")) == (403, 403)


def test_the_simulator_explains_the_scoped_users_tag_and_resource_rules() -> None:
    _seed()
    acme = Organization.objects.get(name="Acme Cloud")
    scoped = acme.memberships.get(user__email="scoped@acme.example")
    owner = Client()
    assert owner.login(username="owner@acme.example", password="demo-owner-2026")

    def simulate(action: str, name: str) -> Any:
        found = Resource.objects.get(organization=acme, name=name)
        params = {"principal": f"user:{scoped.pk}", "action": action, "resource": found.pk}
        response = owner.get(f"/o/{acme.pk}/iam/simulator/", params)
        assert response.status_code == 200, response.content
        return response.context["decision"]

    by_tag = simulate("compute:instances:update", "web-staging-1")
    assert by_tag.allowed and "Team instances" in by_tag.explanation
    assert 'resource.tags["team"] is "web"' in by_tag.explanation
    assert not simulate("compute:instances:update", "etl-staging-1").allowed
    protected = simulate("compute:instances:delete", "web-1")
    assert protected.reason == "explicit_deny" and "names this resource" in protected.explanation
