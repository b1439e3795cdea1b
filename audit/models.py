"""The audit trail: append-only events, chained by hash per organization."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from audit.chain import HASHED_FIELDS, content_hash, normal_data
from organizations.models import Organization


class AppendOnlyError(RuntimeError):
    """Raised by any attempt to change or delete recorded events outside the retention purge."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """No update path, and deletion only through `purge_prefix` (the retention purge)."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are append-only: they are never updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are deleted only by the retention purge.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are append-only: they are never updated.")

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[AuditEvent]:
        raise AppendOnlyError("Record events one by one with audit.services.record.")

    def purge_prefix(self) -> int:
        """Delete these rows; only `audit.retention` calls this, on the oldest events."""
        return self._raw_delete(self.db)


class AuditEvent(models.Model):
    """One recorded change, sign-in or denial. Append-only: written by `audit.services.record`.

    `sequence`, `prev_hash` and `hash` chain the events of one organization (or the
    events without one): `hash` covers the content and `prev_hash`, so altering or
    removing a row out of order breaks the chain, which `audit.integrity` detects.
    """

    class Result(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"
        FAILED = "failed", "Failed"

    class ActorType(models.TextChoices):
        USER = "user", "User"
        APPLICATION = "application", "Application"
        API_KEY = "api_key", "API key"
        SCIM_TOKEN = "scim_token", "SCIM token"

    id = models.BigAutoField(primary_key=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        related_name="audit_events",
        null=True,
        blank=True,
    )
    occurred_at = models.DateTimeField()
    action = models.CharField(max_length=64)
    # The action's first segment, kept so the grouped filter walks an index in time order.
    service = models.CharField(max_length=32, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices, default=Result.SUCCESS)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept as text so the trail still names who and what after a deletion (and so the
    # hash does not depend on a foreign key that a deletion sets to NULL).
    actor_type = models.CharField(max_length=16, choices=ActorType.choices, blank=True)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    sequence = models.PositiveBigIntegerField(editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # The trail and its filters: each walks (filter, time) newest first, so a page
            # of a filtered trail of millions of rows reads ~50 index entries.
            models.Index(fields=["organization", "-occurred_at", "-id"], name="audit_org_time"),
            models.Index(
                fields=["organization", "action", "-occurred_at", "-id"], name="audit_org_action"
            ),
            models.Index(
                fields=["organization", "service", "-occurred_at", "-id"],
                name="audit_org_service",
            ),
            models.Index(
                fields=["organization", "result", "-occurred_at", "-id"], name="audit_org_result"
            ),
            models.Index(
                fields=["organization", "actor_type", "actor_id", "-occurred_at", "-id"],
                name="audit_org_actor",
            ),
            models.Index(
                fields=["organization", "target_id", "-occurred_at", "-id"],
                name="audit_org_target",
            ),
            models.Index(
                fields=["organization", "target_label", "-occurred_at", "-id"],
                name="audit_org_target_label",
            ),
            models.Index(
                fields=["organization", "target_type", "-occurred_at", "-id"],
                name="audit_org_target_type",
            ),
            models.Index(fields=["occurred_at"], name="audit_time"),
        ]
        constraints = [
            # One link per position: two writers can never fork a chain.
            models.UniqueConstraint(
                fields=["organization", "sequence"],
                condition=Q(organization__isnull=False),
                name="audit_org_sequence_unique",
            ),
            models.UniqueConstraint(
                fields=["sequence"],
                condition=Q(organization__isnull=True),
                name="audit_global_sequence_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or 'system'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are append-only: they are never updated.")
        # Any insert (record(), factories, the shell) joins its organization's chain, in
        # the caller's transaction when there is one (the head stays locked until commit).
        with transaction.atomic(savepoint=False):
            self._seal()
            super().save(*args, **kwargs)

    def _seal(self) -> None:
        """Give this unsaved event its place in its organization's chain and its hash.

        Runs inside the transaction that saves the event: the head stays locked until
        commit, and the next writer reads the head this one leaves behind.
        """
        head = AuditChain.lock_head(self.organization_id)
        if self.occurred_at is None:
            self.occurred_at = timezone.now()
        self.service = self.action.split(".", 1)[0]
        self.data = normal_data(self.data)
        self.sequence = head.sequence + 1
        self.prev_hash = head.last_hash
        self.hash = content_hash({name: getattr(self, name) for name in HASHED_FIELDS})
        head.sequence, head.last_hash = self.sequence, self.hash
        head.save(update_fields=["sequence", "last_hash"])

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are deleted only by the retention purge.")

    @property
    def message(self) -> str:
        from audit.events import get

        try:
            template = get(self.action).message
        except ValueError:
            return self.action
        return template.format(actor=self.actor_label or "System", target=self.target_label or "—")

    @property
    def principal(self) -> str:
        """The filter value naming this event's principal (`user:<id>`), or ""."""
        return f"{self.actor_type}:{self.actor_id}" if self.actor_type else ""


class AuditChain(models.Model):
    """The head of one organization's chain (key "global" for events without one).

    Locked by every writer of the chain, so concurrent writers append one after the
    other. It also remembers the last link (a removed newest event is detected) and
    the last purged link (the retained trail must start right after it).
    """

    GLOBAL = "global"

    key = models.CharField(max_length=64, primary_key=True)
    organization = models.OneToOneField(
        "organizations.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, blank=True)
    purged_sequence = models.PositiveBigIntegerField(default=0)
    purged_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit chain {self.key} at {self.sequence}"

    @classmethod
    def lock_head(cls, organization_id: object) -> AuditChain:
        """The chain head of the organization, locked until the caller's transaction ends.

        Concurrent writers of one organization append one after the other, and different
        organizations never wait for each other. The organization row is locked first:
        services lock it too (membership changes) or update it (the authorization version
        bump) before or after recording, so taking both locks in one order everywhere keeps
        concurrent writers from deadlocking.
        """
        if organization_id:
            rows = Organization.objects.select_for_update().filter(pk=organization_id)
            list(rows.values("pk"))
        key = cls.key_for(organization_id)
        heads = cls.objects.select_for_update()
        head = heads.filter(key=key).first()
        if head is None:
            # Two first writers may race here: ON CONFLICT DO NOTHING lets both continue.
            cls.objects.bulk_create(
                [cls(key=key, organization_id=organization_id or None)], ignore_conflicts=True
            )
            head = heads.get(key=key)
        return head

    @staticmethod
    def key_for(organization_id: object) -> str:
        return str(organization_id) if organization_id else AuditChain.GLOBAL
