"""Reads of invitations."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Lower

from accounts.tokens import token_digest
from organizations.models import Group, Invitation, Organization
from organizations.selectors.organizations import in_organization


def invitations_of(organization: Organization, status: str = "") -> QuerySet[Invitation]:
    queryset = Invitation.objects.filter(organization=organization).select_related("invited_by")
    if status in Invitation.Status.values:
        queryset = queryset.filter(status=status)
    return queryset.prefetch_related(
        Prefetch("groups", queryset=Group.objects.order_by(Lower("name")))
    ).order_by("-created_at")


def invitation_for(*, organization: Organization, invitation_id: object) -> Invitation:
    return in_organization(Invitation, organization, invitation_id)


def invitation_by_token(raw: str) -> Invitation | None:
    if not raw or len(raw) > 128:
        return None
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=token_digest(raw))
        .first()
    )
    return invitation
