from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Policy(models.Model):
    """A named, ordered list of rules, attached to principals.

    Managed policies (built in, read-only) have no organization and are shared by all.
    An organization's guardrail policy holds deny rules applied to everyone but owners.
    """

    class Kind(models.TextChoices):
        CUSTOM = "custom", "Custom"
        MANAGED = "managed", "Managed"
        GUARDRAIL = "guardrail", "Guardrail"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        related_name="policies",
        null=True,
        blank=True,
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOM)
    name = models.CharField(max_length=128)
    description = models.TextField(max_length=1000, blank=True)
    labels = models.JSONField(default=list, blank=True)
    # The number of its latest `PolicyVersion`; compiled rules carry it into explanations.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="policies_policy_name_ci_unique"
            ),
            models.UniqueConstraint(
                Lower("name"),
                condition=Q(organization__isnull=True),
                name="policies_managed_name_unique",
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(kind="guardrail"),
                name="policies_one_guardrail_per_organization",
            ),
            models.CheckConstraint(
                condition=Q(kind="managed", organization__isnull=True)
                | (~Q(kind="managed") & Q(organization__isnull=False)),
                name="policies_managed_iff_no_organization",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_managed(self) -> bool:
        return self.kind == self.Kind.MANAGED


class Rule(models.Model):
    class Effect(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    class Scope(models.TextChoices):
        ORGANIZATION = "organization", "Organization"
        ALL_PROJECTS = "all_projects", "All projects"
        PROJECTS = "projects", "Chosen projects"
        RESOURCES = "resources", "Chosen resources"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField()
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.ALLOW)
    # Action names, wildcard patterns or permission-set names, as the author wrote them.
    actions = models.JSONField(default=list)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    projects = models.ManyToManyField(
        "organizations.Project", blank=True, related_name="policy_rules"
    )
    # For the chosen-resources scope (#14); deleting a resource takes it out of its rules
    # (organizations.services.resources.resource_delete, audited per policy).
    resources = models.ManyToManyField("organizations.Resource", blank=True, related_name="rules")
    condition = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "position"], name="policies_rule_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} rule {self.position}"


class PolicyAttachment(models.Model):
    """A policy attached to one principal of an organization: a user's membership, a group
    or an application (exactly one)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="attachments")
    membership = models.ForeignKey(
        "organizations.Membership",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="policy_attachments",
    )
    group = models.ForeignKey(
        "organizations.Group",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="policy_attachments",
    )
    application = models.ForeignKey(
        "organizations.Application",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="policy_attachments",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "membership"], name="policies_attachment_unique_membership"
            ),
            models.UniqueConstraint(
                fields=["policy", "group"], name="policies_attachment_unique_group"
            ),
            models.UniqueConstraint(
                fields=["policy", "application"], name="policies_attachment_unique_application"
            ),
            models.CheckConstraint(
                condition=Q(membership__isnull=False, group__isnull=True, application__isnull=True)
                | Q(membership__isnull=True, group__isnull=False, application__isnull=True)
                | Q(membership__isnull=True, group__isnull=True, application__isnull=False),
                name="policies_attachment_one_principal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} → {self.principal}"

    @property
    def principal(self) -> object:
        return self.membership or self.group or self.application

    @staticmethod
    def principal_field(principal: models.Model) -> str:
        """The field that names `principal`: membership, group or application."""
        name = principal._meta.model_name
        if name not in ("membership", "group", "application"):
            raise TypeError(f"A policy cannot be attached to a {name}.")
        return name


class PolicyVersion(models.Model):
    """A policy as one save left it: its details and a snapshot of its rules (the shape
    of `policies.services.rules.rule_data`), numbered 1, 2, … per policy. Managed
    policies have none: the catalogue in code is their history."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Kept when the author's account is deleted, and for applications' keys.
    author_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    name = models.CharField(max_length=128)
    description = models.TextField(max_length=1000, blank=True)
    rules = models.JSONField(default=list, blank=True)
    change = models.CharField(max_length=255)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "number"], name="policies_version_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} version {self.number}"


# The project of an organization-level action's usage row: a fixed id rather than NULL,
# so the row's key is unique on every database (NULLs are distinct in unique indexes).
NO_PROJECT = uuid.UUID(int=0)


class PermissionUsage(models.Model):
    """When a principal was last allowed and last denied an action (in a project): noted by
    every decision of the console's and the API's guards and of `POST /api/v1/authorize`,
    written in batches (policies.usage). No foreign key to the principal or the project:
    the ids are the authorize API's (a user's account id, an application's id) and a
    deleted project's history stays, harmlessly."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="+"
    )
    principal_type = models.CharField(
        max_length=16, choices=[("user", "User"), ("application", "Application")]
    )
    principal_id = models.UUIDField()
    action = models.CharField(max_length=128)
    project_id = models.UUIDField(default=NO_PROJECT)  # NO_PROJECT: organization-level
    last_allowed_at = models.DateTimeField(null=True, blank=True)
    last_denied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "principal_type", "principal_id", "action", "project_id"],
                name="policies_usage_unique",
            ),
        ]
        # The unique index also serves one principal's rows (its leading columns).

    def __str__(self) -> str:
        return f"{self.principal_type} {self.principal_id}: {self.action}"
