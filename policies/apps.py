from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_managed_policies(sender: AppConfig, **kwargs: Any) -> None:
    from policies.services.policies import sync_managed_policies

    sync_managed_policies()


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Policies"

    def ready(self) -> None:
        from policies import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(_sync_managed_policies, sender=self)
