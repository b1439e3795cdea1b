from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.conftest import Org, otp_verify
from tests.factories import AuditEventFactory, BillingContactFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(org: Org) -> Client:
    InvoiceFactory(organization=org.organization)
    BillingContactFactory(organization=org.organization)
    AuditEventFactory(organization=org.organization)
    client = Client()
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    otp_verify(client, operator)  # the admin wants staff verified with an authenticator
    return client


def test_every_model_has_a_working_admin(operator_client: Client) -> None:
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        response = operator_client.get(
            changelist, {"q": "acme"} if model_admin.search_fields else {}
        )
        assert response.status_code == 200, changelist
        obj = model.objects.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert operator_client.get(change).status_code == 200, change


def test_audit_events_are_read_only_in_the_admin(operator_client: Client, org: Org) -> None:
    event = AuditEventFactory(organization=org.organization)
    delete = reverse("admin:audit_auditevent_delete", args=[event.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert operator_client.get(reverse("admin:audit_auditevent_add")).status_code == 403


def test_non_staff_users_cannot_use_the_admin(owner_client: Client) -> None:
    response = owner_client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_a_verified_authenticator_cannot_use_the_admin() -> None:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_every_admin_but_the_trails_own_records_operators_edits() -> None:
    from audit.admin import AuditedModelAdmin
    from audit.models import AuditEvent

    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model is not AuditEvent
        and model._meta.app_label in {"accounts", "organizations", "policies"}
        and not isinstance(model_admin, AuditedModelAdmin)
    ]
    assert unaudited == []


def test_an_operators_edit_lands_in_the_organizations_trail(
    operator_client: Client, org: Org
) -> None:
    from audit.models import AuditEvent
    from tests.factories import ProjectFactory

    project = ProjectFactory(organization=org.organization, name="web")
    change = reverse("admin:organizations_project_change", args=[project.pk])
    response = operator_client.post(
        change, {"organization": org.organization.pk, "name": "web-2", "description": "x"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="admin.object.updated").get()
    assert event.organization == org.organization
    assert event.target_label == "web-2"
    delete = reverse("admin:organizations_project_delete", args=[project.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(
        action="admin.object.deleted", organization=org.organization
    ).exists()
