from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import record
from organizations.models import Organization
from organizations.services.organizations import organization_create


@transaction.atomic
def account_sign_up(
    *,
    email: str,
    password: str,
    full_name: str,
    organization_name: str,
    request: HttpRequest | None = None,
) -> tuple[User, Organization]:
    """Create the account, its organization with a default project, and the owner membership."""
    user = User.objects.create_user(email=email, password=password, full_name=full_name.strip())
    organization = organization_create(name=organization_name, owner=user, request=request)
    record(
        action=events.ACCOUNT_SIGNED_UP,
        organization=organization,
        actor=user,
        target=user,
        request=request,
    )
    return user, organization
