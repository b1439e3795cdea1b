"""Shrink to used (#16): from the unused-access report, a principal's direct custom
policies replaced, through the change preview, by one holding only what it used."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from organizations.models import Application, Membership
from policies.models import NO_PROJECT, PermissionUsage, Policy, PolicyAttachment, Rule
from policies.selectors.shrink import shrink_plan
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
    grant,
)

pytestmark = pytest.mark.django_db

ORG_READ = "organization:organization:read"
INVOICES = "billing:invoices:read"
LIST = "compute:instances:list"
READ = "compute:instances:read"


def used(subject: Membership | Application, action: str, project: object = None, days: int = 1):
    """A usage row: `subject` allowed `action` (in `project`) `days` days ago."""
    user = isinstance(subject, Membership)
    return PermissionUsage.objects.create(
        organization=subject.organization,
        principal_type="user" if user else "application",
        principal_id=subject.user_id if user else subject.pk,
        action=action,
        project_id=getattr(project, "pk", NO_PROJECT),
        last_allowed_at=timezone.now() - dt.timedelta(days=days),
    )


@pytest.fixture
def ana(org: Org) -> Membership:
    """A member holding a broad custom policy directly."""
    member = MembershipFactory(organization=org.organization)
    policy = grant(member, actions=[ORG_READ, INVOICES])
    RuleFactory(policy=policy, position=2, actions=[LIST, READ], scope=Rule.Scope.ALL_PROJECTS)
    return member


def page_url(org: Org, kind: str, pk: object, days: int = 90) -> str:
    return reverse(f"iamtools:shrink_{kind}", args=[org.organization.pk, pk]) + f"?days={days}"


def save_url(org: Org, kind: str, pk: object) -> str:
    return reverse(f"iamtools:shrink_{kind}_save", args=[org.organization.pk, pk])


def digest_of(body: str) -> str:
    found = re.search(r'name="preview_digest" value="([0-9a-f]+)"', body)
    assert found, body
    return found.group(1)


# ------------------------------------------------------------------------------ plan


def test_plan_keeps_only_the_used_pairs_with_their_scope(org: Org, ana: Membership) -> None:
    web, db, idle = (ProjectFactory(organization=org.organization) for _ in range(3))
    used(ana, ORG_READ)
    used(ana, INVOICES, days=200)  # outside the window
    used(ana, LIST, web)
    used(ana, LIST, db)
    used(ana, READ, web)
    plan = shrink_plan(subject=ana, days=90)
    assert plan.proposes
    assert [(r.effect, r.actions, r.scope) for r in plan.rules] == [
        ("allow", (ORG_READ,), "organization"),
        ("allow", (LIST,), "projects"),
        ("allow", (READ,), "projects"),
    ]
    assert set(plan.rules[1].projects) == {web, db}
    assert plan.rules[2].projects == (web,)
    assert idle not in plan.rules[1].projects
    assert [policy.name for policy in plan.replaced] == [
        a.policy.name for a in ana.policy_attachments.all()
    ]


def test_plan_leaves_out_what_is_conditional_on_resources_or_held_elsewhere(
    org: Org, ana: Membership
) -> None:
    web = ProjectFactory(organization=org.organization)
    instance = ResourceFactory(project=web)
    conditional = grant(ana, actions=["dns:zones:list"], scope=Rule.Scope.ALL_PROJECTS)
    conditional.rules.update(condition='request.ip == "10.0.0.1"')
    grant(ana, actions=["compute:instances:update"], resources=[instance])
    deny = PolicyFactory(organization=org.organization)
    RuleFactory(
        policy=deny, effect="deny", actions=["compute:instances:delete"], scope="all_projects"
    )
    PolicyAttachmentFactory(policy=deny, membership=ana)
    group = GroupFactory(organization=org.organization)
    group.members.add(ana)
    PolicyAttachment.objects.create(
        organization=org.organization,
        policy=Policy.objects.get(name="BillingAccess"),
        group=group,
    )
    used(ana, "dns:zones:list", web)
    used(ana, "compute:instances:update", web)
    used(ana, "billing:contact:read")
    used(ana, ORG_READ)
    plan = shrink_plan(subject=ana, days=90)
    assert [(r.effect, r.actions) for r in plan.rules] == [
        ("allow", (ORG_READ,)),
        ("deny", ("compute:instances:delete",)),  # carried over unchanged
    ]
    reasons = {left.action: left.reason for left in plan.left_out}
    assert reasons["dns:zones:list"] == "granted only under a condition"
    assert reasons["compute:instances:update"] == "granted only on chosen resources"
    assert "managed policy" in reasons["billing:contact:read"]
    assert plan.through_groups == [("BillingAccess", group.name)]


def test_nothing_used_proposes_nothing(org: Org, ana: Membership) -> None:
    used(ana, ORG_READ, days=100)
    client = org.client_for("owner")
    response = client.get(page_url(org, "user", ana.pk))
    assert response.status_code == 200
    assert b"there is no policy to propose" in response.content
    assert b"Preview the change" not in response.content
    response = client.post(
        save_url(org, "user", ana.pk), {"name": "Narrow", "days": 90, "preview": "1"}
    )
    assert response.status_code == 400
    assert not Policy.objects.filter(name="Narrow").exists()


# ------------------------------------------------------------------------------ pages


def test_the_report_links_to_the_page_which_lists_the_rules(org: Org, ana: Membership) -> None:
    used(ana, ORG_READ)
    client = org.client_for("owner")
    report = client.get(reverse("iamtools:unused_access", args=[org.organization.pk]))
    assert page_url(org, "user", ana.pk).encode() in report.content
    response = client.get(page_url(org, "user", ana.pk))
    body = response.content.decode()
    assert ORG_READ in body and INVOICES not in body.split("The narrowed policy")[1]
    assert "Group-held and managed policies cannot be narrowed" not in body


def test_the_page_is_404_for_owners_groups_and_other_organizations(
    org: Org, ana: Membership
) -> None:
    client = org.client_for("owner")
    stranger = MembershipFactory()
    assert client.get(page_url(org, "user", org.owner.pk)).status_code == 404
    assert client.get(page_url(org, "user", stranger.pk)).status_code == 404
    group = GroupFactory(organization=org.organization)
    assert client.get(page_url(org, "application", group.pk)).status_code == 404
    assert client.get(page_url(org, "user", ana.pk)).status_code == 200


def test_the_page_needs_the_simulator_and_saving_needs_policy_writes(
    org: Org, ana: Membership
) -> None:
    used(ana, ORG_READ)
    assert org.client_for("billing").get(page_url(org, "user", ana.pk)).status_code == 403
    attacher = MembershipFactory(organization=org.organization)
    grant(attacher, actions=["iam:policies:attach", "iam:simulator:use"])
    client = Client()
    client.force_login(attacher.user)
    data = {"name": "Narrow", "days": 90, "preview": "1"}
    response = client.post(save_url(org, "user", ana.pk), data)
    assert response.status_code == 403
    assert b"iam:policies:create" in response.content
    assert not Policy.objects.filter(name="Narrow").exists()


# ------------------------------------------------------------------------ preview, save


def test_preview_shows_the_losses_and_confirm_replaces_the_policies(
    org: Org, ana: Membership
) -> None:
    web = ProjectFactory(organization=org.organization)
    used(ana, ORG_READ)
    used(ana, LIST, web)
    [old] = [a.policy for a in ana.policy_attachments.all()]
    client = org.client_for("owner")
    url = save_url(org, "user", ana.pk)
    data = {"name": "Ana narrowed", "days": 90}
    preview = client.post(url, {**data, "preview": "1"})
    body = preview.content.decode()
    assert preview.status_code == 200
    assert INVOICES in body and "lose" in body
    assert not Policy.objects.filter(name="Ana narrowed").exists()  # nothing saved yet
    response = client.post(url, {**data, "preview_digest": digest_of(body)})
    new = Policy.objects.get(name="Ana narrowed")
    assert response.status_code == 302
    assert response.url == reverse("policies:policy_detail", args=[org.organization.pk, new.pk])
    assert list(ana.policy_attachments.values_list("policy", flat=True)) == [new.pk]
    assert Policy.objects.filter(pk=old.pk).exists()  # detached, not deleted
    rules = list(new.rules.order_by("position"))
    assert [(r.actions, r.scope) for r in rules] == [
        ([ORG_READ], "organization"),
        ([LIST], "projects"),
    ]
    assert list(rules[1].projects.all()) == [web]
    actions = list(
        AuditEvent.objects.filter(organization=org.organization)
        .order_by("occurred_at", "pk")
        .values_list("action", flat=True)
    )
    assert actions[-5:] == [
        "iam.policy.created",
        "iam.policy.rule_added",
        "iam.policy.rule_added",
        "iam.policy.attached",
        "iam.policy.detached",
    ]
    attached = AuditEvent.objects.get(action="iam.policy.attached", target_id=str(new.pk))
    assert f"{INVOICES}" in attached.data["preview"]


def test_a_post_without_the_preview_saves_at_once(org: Org, ana: Membership) -> None:
    """As every previewed change: previewing is offered (the page's only button), and a
    post without it (a script's) saves directly."""
    used(ana, ORG_READ)
    response = org.client_for("owner").post(
        save_url(org, "user", ana.pk), {"name": "Narrow", "days": 90}
    )
    assert response.status_code == 302
    attached = AuditEvent.objects.get(action="iam.policy.attached")
    assert "preview" not in attached.data
    assert list(ana.policy_attachments.values_list("policy__name", flat=True)) == ["Narrow"]


def test_a_stale_confirmation_is_shown_again(org: Org, ana: Membership) -> None:
    used(ana, ORG_READ)
    client = org.client_for("owner")
    url = save_url(org, "user", ana.pk)
    response = client.post(url, {"name": "Narrow", "days": 90, "preview_digest": "0" * 32})
    assert response.status_code == 200
    assert b"Access changed since your preview" in response.content
    assert not Policy.objects.filter(name="Narrow").exists()


def test_a_taken_name_re_renders_the_form(org: Org, ana: Membership) -> None:
    used(ana, ORG_READ)
    PolicyFactory(organization=org.organization, name="Taken")
    client = org.client_for("owner")
    response = client.post(
        save_url(org, "user", ana.pk), {"name": "Taken", "days": 90, "preview": "1"}
    )
    assert response.status_code == 400
    assert b"already exists" in response.content


def test_the_delegation_ceiling_refuses_what_the_author_does_not_hold(
    org: Org, ana: Membership
) -> None:
    used(ana, ORG_READ)
    used(ana, INVOICES)
    admin = MembershipFactory(organization=org.organization)
    PolicyAttachment.objects.create(
        organization=org.organization,
        policy=Policy.objects.get(name="IAMManager"),
        membership=admin,
    )
    client = Client()
    client.force_login(admin.user)
    response = client.post(
        save_url(org, "user", ana.pk), {"name": "Narrow", "days": 90, "preview": "1"}
    )
    assert response.status_code == 400
    assert b"You can only grant what you hold yourself" in response.content
    assert not Policy.objects.filter(name="Narrow").exists()


def test_an_application_is_shrunk_too(org: Org) -> None:
    app = ApplicationFactory(organization=org.organization)
    policy = PolicyFactory(organization=org.organization)
    RuleFactory(policy=policy, actions=[ORG_READ, INVOICES])
    PolicyAttachment.objects.create(organization=org.organization, policy=policy, application=app)
    used(app, INVOICES)
    client = org.client_for("owner")
    url = save_url(org, "application", app.pk)
    data = {"name": "App narrowed", "days": 90}
    body = client.post(url, {**data, "preview": "1"}).content.decode()
    assert client.post(url, {**data, "preview_digest": digest_of(body)}).status_code == 302
    [attached] = app.policy_attachments.select_related("policy")
    assert attached.policy.name == "App narrowed"
    assert list(attached.policy.rules.values_list("actions", flat=True)) == [[INVOICES]]


def test_the_page_reads_a_constant_number_of_queries(
    org: Org, ana: Membership, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")

    def uses(count: int) -> None:
        for _ in range(count):
            used(ana, LIST, ProjectFactory(organization=org.organization))

    uses(2)
    client.get(page_url(org, "user", ana.pk))  # warm the session and caches
    with django_assert_max_num_queries(30) as captured:
        client.get(page_url(org, "user", ana.pk))
    baseline = len(captured.captured_queries)
    uses(20)
    with django_assert_max_num_queries(baseline):
        response = client.get(page_url(org, "user", ana.pk))
    assert response.status_code == 200


def test_with_htmx_the_preview_swaps_the_card_and_confirm_redirects(
    org: Org, ana: Membership
) -> None:
    used(ana, ORG_READ)
    client = org.client_for("owner")
    url = save_url(org, "user", ana.pk)
    data = {"name": "Narrow", "days": 90}
    htmx = {"HX-Request": "true"}
    shown = client.post(url, {**data, "preview": "1"}, headers=htmx)
    body = shown.content.decode()
    assert 'id="shrink-form"' in body and "<html" not in body
    response = client.post(url, {**data, "preview_digest": digest_of(body)}, headers=htmx)
    new = Policy.objects.get(name="Narrow")
    assert response.headers["HX-Redirect"] == reverse(
        "policies:policy_detail", args=[org.organization.pk, new.pk]
    )
