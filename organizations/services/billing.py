"""Writes to billing: the billing contact."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import diff, record
from organizations.models import BillingContact, Organization


@transaction.atomic
def billing_contact_update(
    *,
    organization: Organization,
    values: dict[str, Any],
    actor: User,
    request: HttpRequest | None = None,
) -> BillingContact:
    fields = ["name", "email", "company", "address", "country", "vat_number"]
    contact = BillingContact.objects.filter(organization=organization).first()
    before = {f: getattr(contact, f) for f in fields} if contact else {}
    if contact is None:
        contact = BillingContact(organization=organization)
    for field in fields:
        setattr(contact, field, (values.get(field) or "").strip())
    contact.full_clean()
    contact.save()
    record(
        action=events.BILLING_CONTACT_UPDATED,
        organization=organization,
        actor=actor,
        target=contact,
        target_label=contact.name,
        data=diff(before, {f: getattr(contact, f) for f in fields}),
        request=request,
    )
    return contact
