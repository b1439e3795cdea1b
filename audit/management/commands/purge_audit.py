"""`manage.py purge_audit`: delete audit events older than each organization's retention.

Safe to run from cron at any frequency: each run deletes only what has expired since.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.retention import purge
from organizations.models import Organization


class Command(BaseCommand):
    help = "Delete audit events older than each organization's audit retention (days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="Only this organization (its id).")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = None
        if options["organization"]:
            try:
                organization = Organization.objects.get(pk=options["organization"])
            except (Organization.DoesNotExist, ValueError, ValidationError):
                raise CommandError(f"No organization {options['organization']!r}.") from None
        results = purge(organization=organization)
        total = sum(result.deleted for result in results)
        if options["verbosity"] >= 2:
            for result in results:
                name = result.organization.name if result.organization else "(no organization)"
                self.stdout.write(
                    f"{name}: {result.deleted} deleted (older than {result.cutoff:%Y-%m-%d %H:%M})"
                )
        self.stdout.write(f"Deleted {total} audit event{'s' if total != 1 else ''}.")
