from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import BillingContact
from policies.models import Policy
from tests.conftest import Org, assert_access
from tests.factories import BillingContactFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def test_invoice_list_and_detail(org: Org) -> None:
    invoice = InvoiceFactory(organization=org.organization, number="INV-42")
    client = org.client_for("billing")
    listing = client.get(reverse("organizations:invoice_list", args=[org.organization.pk]))
    assert "INV-42" in listing.content.decode()
    detail = client.get(
        reverse("organizations:invoice_detail", args=[org.organization.pk, invoice.pk])
    )
    body = detail.content.decode()
    assert "1,234.56 EUR" in body and "Open" in body


def test_invoice_list_runs_the_same_queries_for_2_or_200(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("billing")
    url = reverse("organizations:invoice_list", args=[org.organization.pk])
    InvoiceFactory.create_batch(2, organization=org.organization)
    with django_assert_max_num_queries(12) as small:
        client.get(url)
    InvoiceFactory.create_batch(198, organization=org.organization)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert response.context["page"].paginator.count == 200


def test_invoices_by_role(org: Org) -> None:
    invoice = InvoiceFactory(organization=org.organization)
    assert_access(
        org,
        "get",
        reverse("organizations:invoice_detail", args=[org.organization.pk, invoice.pk]),
        {"owner": 200, "billing": 200, "readonly": 403, "tech": 403, "outsider": 404},
    )


def test_another_organizations_invoice_is_not_found(org: Org) -> None:
    foreign = InvoiceFactory()
    response = org.client_for("owner").get(
        reverse("organizations:invoice_detail", args=[org.organization.pk, foreign.pk])
    )
    assert response.status_code == 404


def test_billing_user_updates_the_contact(org: Org) -> None:
    url = reverse("organizations:billing_contact_update", args=[org.organization.pk])
    response = org.client_for("billing").post(
        url, {"name": "Bea", "email": "bills@acme.example", "company": "Acme SAS"}
    )
    assert response.status_code == 302
    contact = BillingContact.objects.get(organization=org.organization)
    assert (contact.name, contact.email, contact.company) == (
        "Bea",
        "bills@acme.example",
        "Acme SAS",
    )
    assert AuditEvent.objects.filter(action="billing.contact.updated").exists()


def test_contact_form_keeps_input_on_error(org: Org) -> None:
    url = reverse("organizations:billing_contact_update", args=[org.organization.pk])
    response = org.client_for("owner").post(url, {"name": "Bea", "email": "not-an-email"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address." in body and 'value="Bea"' in body
    assert not BillingContact.objects.exists()


def test_contact_without_update_permission_shows_no_form_and_refuses_posts(org: Org) -> None:
    BillingContactFactory(organization=org.organization, name="Bea")
    policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingReadOnly")
    org.readonly.policy_attachments.create(policy=policy, organization=org.organization)
    client = org.client_for("readonly")
    page = client.get(reverse("organizations:billing_contact", args=[org.organization.pk]))
    body = page.content.decode()
    assert "Bea" in body and "Save billing contact" not in body
    assert_access(
        org,
        "post",
        reverse("organizations:billing_contact_update", args=[org.organization.pk]),
        {"readonly": 403, "tech": 403, "outsider": 404},
        name="Mallory",
        email="m@evil.example",
    )
    assert BillingContact.objects.get().name == "Bea"
