"""`manage.py seed_scale` at a tiny size: counts, the services' invariants, a valid chain."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count
from django.test import Client

from accounts.models import User
from audit.integrity import verify_chain
from audit.models import AuditChain, AuditEvent
from organizations.models import APIKey, Application, Group, Membership, Organization, Project
from policies.evaluator import compile_rule
from policies.models import Policy, PolicyAttachment, Rule
from policies.selectors.rules import compile_rules_for

pytestmark = pytest.mark.django_db(transaction=False)

TINY = [
    "--users=30",
    "--groups=12",
    "--policies=30",
    "--rules-per-policy=3",
    "--applications=6",
    "--api-keys=40",
    "--projects=4",
    "--audit-events=200",
]


def _seed(*extra: str) -> str:
    out = StringIO()
    call_command("seed_scale", *TINY, *extra, stdout=out)
    return out.getvalue()


def test_seed_scale_builds_the_sizes_asked_with_valid_invariants() -> None:
    output = _seed()
    organization = Organization.objects.get(name="Scale")
    memberships = Membership.objects.filter(organization=organization)
    assert memberships.count() == 30
    assert memberships.filter(is_owner=True).get().user.email == "owner@scale.scale.example"
    assert Group.objects.filter(organization=organization).count() == 12
    assert Application.objects.filter(organization=organization).count() == 6
    assert APIKey.objects.filter(organization=organization).count() == 40
    assert Project.objects.filter(organization=organization).count() == 4
    assert Project.objects.filter(organization=organization, is_default=True).count() == 1
    policies = Policy.objects.filter(organization=organization)
    assert policies.count() == 30
    assert Rule.objects.filter(policy__organization=organization).count() == 90

    # Users: members of the organization without a usable password, in ~5 groups each.
    members = memberships.exclude(user__email__in=["owner@scale.scale.example"]).exclude(
        user__email="probe@scale.scale.example"
    )
    assert all(m.user.managed_by_id == organization.pk for m in members)
    assert not any(m.user.has_usable_password() for m in members)
    assert {m.groups.count() for m in members} == {5}

    # Rules compile strictly; project-scoped ones name projects of the organization.
    for rule in Rule.objects.filter(policy__organization=organization).prefetch_related("projects"):
        project_ids = [str(p.pk) for p in rule.projects.all()]
        assert all(p.organization_id == organization.pk for p in rule.projects.all())
        assert bool(project_ids) == (rule.scope == Rule.Scope.PROJECTS)
        compile_rule(
            policy_id=str(rule.policy_id),
            policy_name="p",
            rule_index=rule.position,
            effect=rule.effect,
            actions=rule.actions,
            scope=rule.scope,
            project_ids=project_ids,
            condition=rule.condition,
            strict=True,
        )
    assert Rule.objects.filter(policy__organization=organization).exclude(condition="").exists()

    # Attachments: policies of this organization or managed ones, on its principals.
    attachments = PolicyAttachment.objects.filter(organization=organization)
    assert attachments.filter(group__isnull=False).exists()
    assert attachments.filter(membership__isnull=False).exists()
    assert attachments.filter(application__isnull=False).count() == 6
    assert (
        not attachments.exclude(policy__organization=organization)
        .exclude(policy__kind=Policy.Kind.MANAGED)
        .exists()
    )

    # The probe: a non-owner with 25 policies through 5 groups, and a working password.
    probe = memberships.get(user__email="probe@scale.scale.example")
    assert not probe.is_owner and probe.groups.count() == 5
    assert PolicyAttachment.objects.filter(group__members=probe).count() == 25
    assert compile_rules_for(probe)
    assert "probe@scale.scale.example / scale-probe-2026" in output
    assert "owner@scale.scale.example / scale-owner-2026" in output

    # API keys: one bearer each, a SHA-256 digest stored, never the secret.
    keys = APIKey.objects.filter(organization=organization)
    assert keys.filter(bearer_application__isnull=False).exists()
    assert keys.filter(bearer_membership__isnull=False).exists()
    assert all(len(k.secret_hash) == 64 for k in keys)
    assert keys.values("access_key").annotate(n=Count("id")).filter(n__gt=1).count() == 0

    # The trail: 200 events in one valid chain, the head on the last one.
    assert AuditEvent.objects.filter(organization=organization).count() == 200
    assert AuditChain.objects.get(key=str(organization.pk)).sequence == 200
    assert verify_chain(organization.pk).ok
    out = StringIO()
    call_command("verify_audit", organization=str(organization.pk), stdout=out)
    assert "intact (200 events checked)" in out.getvalue()

    # Signing in goes through the recorder and extends the same chain.
    client = Client()
    assert client.login(username=probe.user.email, password="scale-probe-2026")
    assert verify_chain(organization.pk).ok


def test_seed_scale_refuses_an_existing_organization_unless_replace() -> None:
    _seed()
    first = Organization.objects.get(name="Scale").pk
    with pytest.raises(CommandError, match="--replace"):
        _seed()
    _seed("--replace")
    organization = Organization.objects.get(name="Scale")
    assert organization.pk != first
    assert Membership.objects.filter(organization=organization).count() == 30
    assert User.objects.filter(email__endswith="@scale.scale.example").count() == 30
    assert verify_chain(organization.pk).ok
