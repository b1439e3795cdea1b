"""Billing: invoices and the billing contact."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from iamportal.forms import save_form
from iamportal.request import paginate
from organizations.forms.billing import BillingContactForm
from organizations.models import BillingContact
from organizations.selectors import billing as billing_selectors
from organizations.services import billing as billing_services
from policies.guards import requires


@requires("billing:invoices:list")
@require_GET
def invoice_list(request: HttpRequest, org_id: UUID) -> HttpResponse:
    page = paginate(request, billing_selectors.invoices_of(request.organization))
    return render(request, "organizations/billing/invoice_list.html", {"page": page})


@requires("billing:invoices:read")
@require_GET
def invoice_detail(request: HttpRequest, org_id: UUID, invoice_id: UUID) -> HttpResponse:
    invoice = billing_selectors.invoice_for(
        organization=request.organization, invoice_id=invoice_id
    )
    contact = BillingContact.objects.filter(organization=request.organization).first()
    return render(
        request,
        "organizations/billing/invoice_detail.html",
        {"invoice": invoice, "contact": contact},
    )


def _contact_page(
    request: HttpRequest, form: BillingContactForm, contact: BillingContact | None, status: int
) -> HttpResponse:
    return render(
        request,
        "organizations/billing/contact.html",
        {"form": form, "contact": contact},
        status=status,
    )


@requires("billing:contact:read")
@require_GET
def billing_contact(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """Who receives the invoices; the form shows only to those who may update it."""
    contact = BillingContact.objects.filter(organization=request.organization).first()
    return _contact_page(request, BillingContactForm(instance=contact), contact, 200)


@requires("billing:contact:update")
@require_POST
def billing_contact_update(request: HttpRequest, org_id: UUID) -> HttpResponse:
    organization = request.organization
    contact = BillingContact.objects.filter(organization=organization).first()
    form = BillingContactForm(request.POST, instance=contact)
    if save_form(
        form,
        lambda data: billing_services.billing_contact_update(
            organization=organization,
            values=data,
            actor=request.user,
            request=request,
        ),
    ):
        messages.success(request, "Billing contact saved.")
        return redirect("organizations:billing_contact", org_id=org_id)
    contact = BillingContact.objects.filter(organization=organization).first()
    return _contact_page(request, form, contact, 400)
