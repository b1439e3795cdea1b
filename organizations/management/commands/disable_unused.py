"""Disable the API keys and suspend the members left unused, in every organization whose
security settings ask for it (organizations.services.dormancy). Idempotent: run it daily
from cron or a systemd timer (README, "Disabling unused keys and users")."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from organizations.models import Organization
from organizations.services.dormancy import organization_disable_unused, unused_reason


class Command(BaseCommand):
    help = "Disable unused API keys and suspend unused members where the setting is on."

    def handle(self, *args: Any, **options: Any) -> None:
        keys = members = 0
        organizations = Organization.objects.filter(disable_unused_after_days__isnull=False)
        for organization in organizations.order_by("pk").iterator():
            done = organization_disable_unused(organization=organization)
            reason = unused_reason(organization.disable_unused_after_days)  # type: ignore[arg-type]
            for access_key in done.keys:
                self.stdout.write(f"{organization.name}: disabled API key {access_key} ({reason})")
            for email in done.members:
                self.stdout.write(f"{organization.name}: suspended {email} ({reason})")
            keys += len(done.keys)
            members += len(done.members)
        self.stdout.write(
            self.style.SUCCESS(f"Disabled {keys} API key(s), suspended {members} member(s).")
        )
