from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.emails import canonical_email, canonical_email_or_none


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def normalize_email(self, email: str | None) -> str:
        """The canonical address (accounts.emails); ValidationError on the email field."""
        try:
            return canonical_email(email or "")
        except ValidationError as error:
            raise ValidationError({"email": error}) from None

    def get_by_natural_key(self, username: str | None) -> User:
        email = canonical_email_or_none(username or "")
        if email is None:
            raise self.model.DoesNotExist
        return self.get(email=email)

    def _create(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Operators who may sign in to the Django admin."
    )
    date_joined = models.DateTimeField(default=timezone.now, editable=False)
    # Set for a "member": an account created by (and existing only in) this organization.
    # Members cannot create or own organizations.
    managed_by = models.ForeignKey(
        "organizations.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="managed_users",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = User.objects.normalize_email(self.email)

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class PasswordToken(models.Model):
    """A one-time link to set a password (new members, resets sent by IAM managers).

    Only the SHA-256 of the random token is stored; it dies when used or expired.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"password token for {self.user}"


class UserSession(models.Model):
    """A signed-in browser, listed on the account page so its owner can end it.

    Keyed by the Django session key (the session table holds the same key already);
    ending a session deletes it from the session store, which signs that browser out.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    session_key = models.CharField(max_length=64, unique=True, editable=False)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "-last_seen_at"])]

    def __str__(self) -> str:
        return f"session of {self.user} from {self.ip or 'unknown address'}"

    @property
    def device(self) -> str:
        """A short, human description of the browser from its user agent."""
        from accounts.user_agents import describe

        return describe(self.user_agent)
