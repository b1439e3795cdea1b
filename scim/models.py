"""SCIM tokens, and what an identity provider keeps about the users and groups it
provisions (its external id, the name parts the console stores as one full name)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from audit.models import AuditEvent
from audit.services import AuditActor
from organizations.models import Group, Membership, Organization


class ScimToken(models.Model):
    """A bearer token an identity provider presents: `<prefix>.<secret>`.

    The prefix is public (it finds the row and names the token in the trail); only the
    secret's SHA-256 is stored, so it is shown once. Deleting the row revokes it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="scim_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    # The owner who vouches for it: the token works only while they are an active owner.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def audit_actor(self) -> AuditActor:
        """How the trail names the token as the actor of the writes it makes; the owner
        who vouches for it is their user, as an API key's bearer is."""
        return AuditActor(
            type=AuditEvent.ActorType.SCIM_TOKEN,
            id=str(self.pk),
            label=f"SCIM token {self}",
            user=self.created_by,
        )


class ProvisionedUser(models.Model):
    """A membership an identity provider manages: its id there and the name parts."""

    membership = models.OneToOneField(
        Membership, on_delete=models.CASCADE, primary_key=True, related_name="scim"
    )
    external_id = models.CharField(max_length=255, blank=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SCIM user {self.membership_id}"


class ProvisionedGroup(models.Model):
    """A group an identity provider manages: its id there."""

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, primary_key=True, related_name="scim"
    )
    external_id = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"SCIM group {self.group_id}"
