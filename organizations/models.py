from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from policies.catalogue import RESOURCE_TYPES

AUDIT_RETENTION_MIN_DAYS = 7


class Organization(models.Model):
    """A customer account: the boundary of every permission and every lookup."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    # Bumped in the same transaction as any change to who may do what, so compiled
    # permission caches keyed by it go stale everywhere at once.
    authz_version = models.PositiveBigIntegerField(default=1, editable=False)
    # Security settings (/o/<org>/settings/security/).
    mfa_required = models.BooleanField("require MFA", default=False)
    # When MFA became required: with the grace period, each member's enrollment deadline.
    mfa_required_since = models.DateTimeField(null=True, blank=True, editable=False)
    mfa_grace_days = models.PositiveSmallIntegerField(
        "MFA grace period (days)", default=3, validators=[MaxValueValidator(90)]
    )
    login_failure_limit = models.PositiveSmallIntegerField(
        "failed sign-ins before lock-out",
        default=5,
        validators=[MinValueValidator(3), MaxValueValidator(20)],
    )
    session_max_age_hours = models.PositiveSmallIntegerField(
        "maximum session length (hours)",
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
    )
    api_key_max_lifetime_days = models.PositiveIntegerField(
        "maximum API key lifetime (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Empty: keys may never expire.",
    )
    # API keys and members unused this long are disabled by `manage.py disable_unused`
    # (organizations.services.dormancy); None: never.
    disable_unused_after_days = models.PositiveSmallIntegerField(
        "disable unused API keys and users after (days)",
        null=True,
        blank=True,
        validators=[MinValueValidator(7), MaxValueValidator(3650)],
        help_text="Empty: never.",
    )
    # Lowercased domains ("acme.example"); empty: invitations to any address.
    invitation_domains = models.JSONField(default=list, blank=True)
    # At least a week: a shorter retention lets someone erase their tracks by waiting.
    audit_retention_days = models.PositiveIntegerField(
        "audit retention (days)",
        default=30,
        validators=[
            MinValueValidator(
                AUDIT_RETENTION_MIN_DAYS,
                message="Keep audit events at least %(limit_value)s days.",
            ),
            MaxValueValidator(3650),
        ],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allows_invitation_to(self, email: str) -> bool:
        if not self.invitation_domains:
            return True
        domain = email.rsplit("@", 1)[-1].lower()
        return domain in self.invitation_domains


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        return self.filter(status=Membership.Status.ACTIVE)


class Membership(models.Model):
    """A user's place in an organization."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    is_owner = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Set when an IAM manager unlocks a member locked for not enrolling MFA in time:
    # a new enrollment deadline replacing the organization's grace period.
    mfa_grace_until = models.DateTimeField(null=True, blank=True)
    # Key -> value strings policy conditions read as `principal.tags` (organizations/tags.py).
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="organizations_membership_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def kind(self) -> str:
        """owner, member (an account created by this organization) or guest."""
        if self.is_owner:
            return "owner"
        if self.user.managed_by_id == self.organization_id:
            return "member"
        return "guest"


class Project(models.Model):
    """A container for resources; every organization has one default project."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=64)
    description = models.TextField(max_length=1000, blank=True)
    is_default = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="organizations_project_name_ci_unique"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(is_default=True),
                name="organizations_project_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Resource(models.Model):
    """Something a platform service runs in a project (an instance, a bucket, a DNS zone),
    registered through the API. Policies reach it through its project, and (#14) by id or
    by its tags."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Beside the project's, so a lookup by id is scoped to the organization in one step.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="resources"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="resources")
    type = models.CharField(
        max_length=32, choices=[(key, t.singular) for key, t in RESOURCE_TYPES.items()]
    )
    name = models.CharField(max_length=128)
    # Key -> value, both strings (organizations.services.resources validates them).
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["type", "name", "id"]
        indexes = [
            # A project's page lists one type at a time, by name (and searches names).
            models.Index(fields=["project", "type", "name", "id"]),
        ]

    def __str__(self) -> str:
        return self.name


class Invoice(models.Model):
    """A bill issued to an organization; created by the billing system or in the admin."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        OVERDUE = "overdue", "Overdue"
        VOID = "void", "Void"

    class Currency(models.TextChoices):
        EUR = "EUR", "Euro"
        USD = "USD", "US dollar"
        CHF = "CHF", "Swiss franc"
        GBP = "GBP", "Pound sterling"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invoices"
    )
    number = models.CharField(max_length=32, unique=True)
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.EUR)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    issued_on = models.DateField()
    due_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start", "-number"]
        indexes = [models.Index(fields=["organization", "-period_start"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="organizations_invoice_period_order",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="organizations_invoice_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class BillingContact(models.Model):
    """Who receives the invoices of an organization."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="billing_contact"
    )
    name = models.CharField(max_length=150)
    email = models.EmailField()
    company = models.CharField(max_length=150, blank=True)
    address = models.TextField(max_length=500, blank=True)
    country = models.CharField(max_length=64, blank=True)
    vat_number = models.CharField("VAT number", max_length=32, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Group(models.Model):
    """Users and applications; policies attached to a group apply to each of them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64)
    description = models.TextField(max_length=1000, blank=True)
    members = models.ManyToManyField(Membership, blank=True, related_name="groups")
    applications = models.ManyToManyField("Application", blank=True, related_name="groups")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="organizations_group_name_ci_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Application(models.Model):
    """A non-human principal; it authenticates only with API keys."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="applications"
    )
    name = models.CharField(max_length=64)
    description = models.TextField(max_length=1000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Key -> value strings policy conditions read as `principal.tags` (organizations/tags.py).
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("name"), name="organizations_application_name_ci_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class APIKey(models.Model):
    """An access key (public id) and a secret stored only as a SHA-256 digest.

    The bearer is a membership (a user's own key) or an application, never both; the key
    holds exactly the bearer's permissions in its organization.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    access_key = models.CharField(max_length=32, unique=True, editable=False)
    # hex SHA-256 of the secret: the secret has 160+ bits of randomness, so a fast digest
    # is safe and lets every API request check it cheaply.
    secret_hash = models.CharField(max_length=64, editable=False)
    bearer_membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    bearer_application = models.ForeignKey(
        Application, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    description = models.CharField(max_length=200, blank=True)
    default_project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    # A disabled key is refused, kept and reversible (unlike a revoked one, deleted).
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # When it was last re-enabled: the unused-key sweep counts it as a use.
    enabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [
            # The keys list: a page of the newest keys of an organization, not a sort of all.
            models.Index(fields=["organization", "-created_at"], name="org_apikey_created"),
            # The dashboard's keys expiring within 7 days (migration 0007_groups_scale).
            models.Index(fields=["organization", "expires_at"], name="org_apikey_expires"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(bearer_membership__isnull=False, bearer_application__isnull=True)
                | Q(bearer_membership__isnull=True, bearer_application__isnull=False),
                name="organizations_apikey_one_bearer",
            ),
        ]

    def __str__(self) -> str:
        return self.access_key


class Invitation(models.Model):
    """An invitation by email to join the organization; the token is stored hashed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"

    class Role(models.TextChoices):
        NONE = "", "No role"
        OWNER = "owner", "Owner"
        TECH = "tech", "Tech"
        BILLING = "billing", "Billing"
        READ_ONLY = "readonly", "Read-only"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True, default="")
    groups = models.ManyToManyField(Group, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                condition=Q(status="pending"),
                name="organizations_invitation_one_pending_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization}"
