"""The attached-policies panel of users, groups and applications, and the policy page's
attachments to all three kinds."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Organization
from policies.models import Policy, PolicyAttachment
from policies.services import attachments as attachment_services
from policies.services import policies as policy_services
from policies.views.attachments import policies_panel
from tests.conftest import Org, assert_access
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def attach_url(org: Org, kind: str, principal_id: object) -> str:
    return reverse(
        "policies:principal_policy_attach", args=[org.organization.pk, kind, principal_id]
    )


def detach_url(org: Org, kind: str, principal_id: object, policy_id: object) -> str:
    return reverse(
        "policies:principal_policy_detach",
        args=[org.organization.pk, kind, principal_id, policy_id],
    )


def version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def billing_readers(org: Org) -> Policy:
    policy = PolicyFactory(organization=org.organization, name="Billing readers")
    RuleFactory(policy=policy, position=1, actions=["BillingReadOnly"])
    return policy


@pytest.fixture
def principals(org: Org) -> dict[str, object]:
    group = GroupFactory(organization=org.organization, name="devs")
    application = ApplicationFactory(organization=org.organization, name="ci")
    return {"user": org.tech, "group": group, "application": application}


# ------------------------------------------------------------------------- services


@pytest.mark.parametrize("kind", ["user", "group", "application"])
def test_attach_and_detach_any_principal_bump_once_and_record_the_kind(
    org: Org, principals: dict[str, object], kind: str
) -> None:
    principal = principals[kind]
    policy = billing_readers(org)
    before = version(org)
    assert attachment_services.policy_attach(
        policy=policy, principal=principal, actor=org.owner.user
    )
    assert not attachment_services.policy_attach(
        policy=policy, principal=principal, actor=org.owner.user
    )
    assert version(org) == before + 1
    attachment = PolicyAttachment.objects.get(policy=policy)
    assert attachment.principal == principal
    event = AuditEvent.objects.get(action="iam.policy.attached")
    expected_id = org.tech.user_id if kind == "user" else principal.pk
    assert event.data == {"principal": {"type": kind, "id": str(expected_id)}}
    assert attachment_services.policy_detach(
        policy=policy, principal=principal, actor=org.owner.user
    )
    assert not attachment_services.policy_detach(
        policy=policy, principal=principal, actor=org.owner.user
    )
    assert version(org) == before + 2
    assert AuditEvent.objects.get(action="iam.policy.detached").data == event.data


def test_foreign_policies_and_guardrails_never_attach(
    org: Org, principals: dict[str, object]
) -> None:
    guardrail = PolicyFactory(organization=org.organization, kind="guardrail", name="G")
    for policy in (PolicyFactory(), guardrail):
        for principal in principals.values():
            with pytest.raises(ValidationError):
                attachment_services.policy_attach(
                    policy=policy, principal=principal, actor=org.owner.user
                )
    assert (
        not PolicyAttachment.objects.filter(organization=org.organization)
        .exclude(membership__in=[org.tech, org.billing, org.readonly])
        .exists()
    )


def test_a_group_policy_applies_to_its_members_at_once(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    group.members.add(org.readonly)
    invoices = reverse("organizations:invoice_list", args=[org.organization.pk])
    reader = org.client_for("readonly")
    assert reader.get(invoices).status_code == 403
    org.client_for("owner").post(
        attach_url(org, "group", group.pk), {"policy": str(billing_readers(org).pk)}
    )
    assert reader.get(invoices).status_code == 200


# ------------------------------------------------------------------------- the panel


@pytest.mark.parametrize("kind", ["user", "group", "application"])
def test_panel_attach_with_htmx_returns_the_panel(
    org: Org, owner_client: Client, principals: dict[str, object], kind: str
) -> None:
    principal = principals[kind]
    policy = billing_readers(org)
    response = owner_client.post(
        attach_url(org, kind, principal.pk), {"policy": str(policy.pk)}, headers=HTMX
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="principal-policies"')
    assert "<html" not in body and "Billing readers attached to" in body
    assert PolicyAttachment.objects.filter(policy=policy).get().principal == principal
    # The policy left the picker's matches; detaching puts it back.
    search = reverse(
        "organizations:pick_principal_policies", args=[org.organization.pk, kind, principal.pk]
    )
    query = {"name": "policy", "policy_q": "Billing readers"}
    assert f'value="{policy.pk}"' not in owner_client.get(search, query).content.decode()
    owner_client.post(detach_url(org, kind, principal.pk, policy.pk), headers=HTMX)
    assert f'value="{policy.pk}"' in owner_client.get(search, query).content.decode()
    assert not PolicyAttachment.objects.filter(policy=policy).exists()


def test_panel_plain_post_returns_to_the_page_it_came_from(
    org: Org, owner_client: Client, principals: dict[str, object]
) -> None:
    application = principals["application"]
    page = reverse("organizations:application_detail", args=[org.organization.pk, application.pk])
    policy = billing_readers(org)
    response = owner_client.post(
        attach_url(org, "application", application.pk), {"policy": str(policy.pk), "next": page}
    )
    assert response.status_code == 302 and response.url == page
    # A foreign or absolute `next` is ignored for the principal's own page.
    response = owner_client.post(
        detach_url(org, "application", application.pk, policy.pk),
        {"next": "https://evil.example/"},
    )
    assert response.url == page
    group = principals["group"]
    response = owner_client.post(
        attach_url(org, "group", group.pk), {"policy": str(policy.pk), "next": "//evil.example/"}
    )
    assert response.url == reverse(
        "organizations:group_detail", args=[org.organization.pk, group.pk]
    )


def test_panel_refuses_bad_choices_and_changes_nothing(
    org: Org, owner_client: Client, principals: dict[str, object]
) -> None:
    user = principals["user"]
    guardrail = PolicyFactory(organization=org.organization, kind="guardrail", name="G")
    already = Policy.objects.get(name="TechAccess")  # attached to tech by the fixture
    count = PolicyAttachment.objects.count()
    for value in (str(PolicyFactory().pk), str(guardrail.pk), str(already.pk), "junk", ""):
        response = owner_client.post(attach_url(org, "user", user.pk), {"policy": value})
        assert response.status_code == 400, value
        htmx = owner_client.post(attach_url(org, "user", user.pk), {"policy": value}, headers=HTMX)
        assert htmx.status_code == 200
        assert htmx.content.decode().lstrip().startswith('<section id="principal-policies"')
    response = owner_client.post(attach_url(org, "user", user.pk), {"policy": str(already.pk)})
    assert "that is not attached yet" in response.content.decode()
    assert PolicyAttachment.objects.count() == count


def test_panel_404s_for_foreign_principals_and_unknown_kinds(
    org: Org, owner_client: Client
) -> None:
    policy = billing_readers(org)
    foreign = {
        "user": MembershipFactory().pk,
        "group": GroupFactory().pk,
        "application": ApplicationFactory().pk,
    }
    for kind, pk in foreign.items():
        assert (
            owner_client.post(attach_url(org, kind, pk), {"policy": str(policy.pk)}).status_code
            == 404
        )
        assert owner_client.post(detach_url(org, kind, pk, policy.pk)).status_code == 404
    assert (
        owner_client.post(attach_url(org, "robot", org.tech.pk), {"policy": str(policy.pk)})
    ).status_code == 404
    foreign_policy = PolicyFactory()
    assert (
        owner_client.post(detach_url(org, "user", org.tech.pk, foreign_policy.pk)).status_code
        == 404
    )
    assert not PolicyAttachment.objects.filter(policy=policy).exists()


@pytest.mark.parametrize("kind", ["user", "group", "application"])
def test_panel_writes_follow_the_role_matrix(
    org: Org, principals: dict[str, object], kind: str
) -> None:
    principal = principals[kind]
    policy = billing_readers(org)
    expected = {"tech": 403, "readonly": 403, "billing": 403, "outsider": 404}
    assert_access(org, "post", attach_url(org, kind, principal.pk), expected, policy=str(policy.pk))
    response = org.client_for("readonly").post(attach_url(org, kind, principal.pk))
    assert "iam:policies:attach" in response.content.decode()
    assert not PolicyAttachment.objects.filter(policy=policy).exists()
    attachment_services.policy_attach(policy=policy, principal=principal, actor=org.owner.user)
    assert_access(org, "post", detach_url(org, kind, principal.pk, policy.pk), expected)
    assert PolicyAttachment.objects.filter(policy=policy).exists()


def test_panel_context_lists_direct_and_inherited_policies(org: Org, rf) -> None:
    group = GroupFactory(organization=org.organization, name="devs")
    group.members.add(org.tech)
    through = billing_readers(org)
    attachment_services.policy_attach(policy=through, principal=group, actor=org.owner.user)
    request = rf.get("/somewhere/")
    panel = policies_panel(request, org.tech)
    assert [a.policy.name for a in panel["attachments"]] == ["TechAccess"]
    assert panel["inherited"] == [("Billing readers", "devs")]
    choices = list(panel["form"].fields["policy"].queryset)
    assert through in choices  # inherited only: may still be attached directly
    assert Policy.objects.get(name="TechAccess") not in choices
    assert all(policy.kind != "guardrail" for policy in choices)
    assert panel["next"] == "/somewhere/" and panel["kind"] == "user"


# -------------------------------------------------------------------- policy page


def test_policy_page_attaches_and_detaches_groups_and_applications(
    org: Org, owner_client: Client, principals: dict[str, object]
) -> None:
    policy = billing_readers(org)
    page = reverse("policies:policy_detail", args=[org.organization.pk, policy.pk])
    attach = reverse("policies:policy_attach", args=[org.organization.pk, policy.pk])
    body = owner_client.get(page).content.decode()
    # Search pickers, one per kind (iamportal.widgets.SearchPick).
    assert all(f'name="{name}_q"' in body for name in ("membership", "group", "application"))
    group, application = principals["group"], principals["application"]
    owner_client.post(attach, {"group": str(group.pk)}, headers=HTMX)
    response = owner_client.post(attach, {"application": str(application.pk)}, headers=HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="attachments"')
    assert "devs" in body and ">ci</a>" in body and "Group" in body and "Application" in body
    assert {a.principal for a in PolicyAttachment.objects.filter(policy=policy)} == {
        group,
        application,
    }
    # Two principals in one post are refused.
    other = GroupFactory(organization=org.organization)
    response = owner_client.post(attach, {"membership": str(org.tech.pk), "group": str(other.pk)})
    assert response.status_code == 400
    assert "Choose one user, group or application." in response.content.decode()

    detach = reverse(
        "policies:policy_detach_principal",
        args=[org.organization.pk, policy.pk, "group", group.pk],
    )
    response = owner_client.post(detach)
    assert response.url == page
    assert [a.principal for a in PolicyAttachment.objects.filter(policy=policy)] == [application]
    foreign = ApplicationFactory()
    response = owner_client.post(attach, {"application": str(foreign.pk)})
    assert response.status_code == 400
    bad_detach = reverse(
        "policies:policy_detach_principal",
        args=[org.organization.pk, policy.pk, "application", foreign.pk],
    )
    assert owner_client.post(bad_detach).status_code == 404


def test_deleting_a_policy_records_every_kind_it_was_attached_to(
    org: Org, principals: dict[str, object]
) -> None:
    policy = billing_readers(org)
    for principal in principals.values():
        attachment_services.policy_attach(policy=policy, principal=principal, actor=org.owner.user)
    policy_services.policy_delete(policy=policy, actor=org.owner.user)
    before = AuditEvent.objects.get(action="iam.policy.deleted").data["before"]
    assert before["attached_to"] == [str(org.tech.user_id)]
    assert before["attached_to_groups"] == [str(principals["group"].pk)]
    assert before["attached_to_applications"] == [str(principals["application"].pk)]
