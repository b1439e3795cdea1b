"""`manage.py verify_audit [--organization <id>]`: check the audit trail's hash chains.

Exits with status 1 and names the first broken link of each broken chain.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.integrity import verify_chain
from audit.models import AuditChain
from organizations.models import Organization


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain of every organization (or one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="Only this organization (its id).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["organization"]:
            try:
                organization = Organization.objects.get(pk=options["organization"])
            except (Organization.DoesNotExist, ValueError, ValidationError):
                raise CommandError(f"No organization {options['organization']!r}.") from None
            chains: list[tuple[object, str]] = [(organization.pk, organization.name)]
        else:
            chains = list(Organization.objects.order_by("name").values_list("pk", "name"))
            if AuditChain.objects.filter(key=AuditChain.GLOBAL).exists():
                chains.append((None, "(events without an organization)"))
        broken = 0
        for organization_id, name in chains:
            verification = verify_chain(organization_id)
            label = f"{name} [{organization_id}]" if organization_id else name
            if verification.ok:
                self.stdout.write(f"OK      {label}: {verification.summary}")
            else:
                broken += 1
                self.stdout.write(f"BROKEN  {label}: {verification.summary}")
                if verification.event_id:
                    self.stdout.write(f"        event id {verification.event_id}")
        if broken:
            raise CommandError(f"{broken} audit chain{'s' if broken != 1 else ''} broken.")
        self.stdout.write(f"All {len(chains)} audit chains intact.")
