"""Reads of invoices."""

from __future__ import annotations

from django.db.models import QuerySet

from organizations.models import Invoice, Organization
from organizations.selectors.organizations import get_or_404


def invoices_of(organization: Organization) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organization=organization)


def invoice_for(*, organization: Organization, invoice_id: object) -> Invoice:
    return get_or_404(
        Invoice.objects.all(), "No such invoice.", organization=organization, pk=invoice_id
    )
