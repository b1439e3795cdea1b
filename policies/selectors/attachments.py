"""Reads of attachments: where a policy is attached, what a principal holds directly or through
its groups, what may still be attached."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.functions import Lower

from organizations.models import Application, Group, Membership, Organization
from organizations.selectors.organizations import members_of
from policies.models import Policy, PolicyAttachment
from policies.selectors.policies import visible_policies


def attachments_of(policy: Policy, organization: Organization) -> list[PolicyAttachment]:
    """The policy's attachments in the organization: users, then groups, then applications,
    each by name (one query)."""
    attachments = PolicyAttachment.objects.filter(
        policy=policy, organization=organization
    ).select_related("membership__user", "group", "application")

    def order(attachment: PolicyAttachment) -> tuple[int, str]:
        if attachment.membership_id:
            return 0, attachment.membership.user.email.lower()
        if attachment.group_id:
            return 1, attachment.group.name.lower()
        return 2, attachment.application.name.lower()

    return sorted(attachments, key=order)


def attachable_members(policy: Policy, organization: Organization) -> QuerySet[Membership]:
    return members_of(organization).exclude(policy_attachments__policy=policy)


def attachable_groups(policy: Policy, organization: Organization) -> QuerySet[Group]:
    return (
        Group.objects.filter(organization=organization)
        .exclude(policy_attachments__policy=policy)
        .order_by(Lower("name"))
    )


def attachable_applications(policy: Policy, organization: Organization) -> QuerySet[Application]:
    return (
        Application.objects.filter(organization=organization)
        .exclude(policy_attachments__policy=policy)
        .order_by(Lower("name"))
    )


def policies_attached_to(principal: Membership | Group | Application) -> list[PolicyAttachment]:
    """The policies attached directly to a user (membership), group or application."""
    field = PolicyAttachment.principal_field(principal)
    return list(
        PolicyAttachment.objects.filter(**{field: principal})
        .select_related("policy")
        .order_by(Lower("policy__name"))
    )


def policies_through_groups(principal: Membership | Application) -> list[tuple[str, str]]:
    """What a user or application inherits: (policy name, group name) of each attachment
    to its groups. Names only: a member of many groups inherits dozens, and building
    their model instances cost more than the rest of the panel."""
    related = "members" if isinstance(principal, Membership) else "applications"
    groups = Group.objects.filter(**{related: principal}).values("pk")
    return list(
        PolicyAttachment.objects.filter(group__in=groups)
        .order_by(Lower("policy__name"), Lower("group__name"))
        .values_list("policy__name", "group__name")
    )


def attachable_policies(principal: Membership | Group | Application) -> QuerySet[Policy]:
    """Custom and managed policies not attached to the principal yet (never the guardrail)."""
    field = PolicyAttachment.principal_field(principal)
    attached = PolicyAttachment.objects.filter(**{field: principal}).values("policy_id")
    return (
        visible_policies(principal.organization)
        .exclude(kind=Policy.Kind.GUARDRAIL)
        .exclude(pk__in=attached)
        .order_by("kind", Lower("name"))
    )
