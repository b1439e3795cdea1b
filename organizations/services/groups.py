"""Writes to groups: create, rename, delete, and their users and applications. Membership
changes bump the authorization version: the group's policies follow at once.

The writes an identity provider makes (SCIM) take `via`: the credential the system writes
for, recorded as the actor instead of `actor`, who vouches for it and whose rights bound
the change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from audit import events
from audit.services import AuditActor, diff, record
from iamportal.names import unique_name
from organizations.models import Application, Group, Membership, Organization
from organizations.services.organizations import organization_bump_authz_version
from policies.delegation import require_within_rights
from policies.evaluator import CompiledRule
from policies.models import PolicyAttachment
from policies.selectors.rules import compile_policy_rules

GROUP_NAME_MAX = Group._meta.get_field("name").max_length


def _check_group_name(*, organization: Organization, name: str, exclude: Group | None) -> str:
    return unique_name(
        name,
        taken=organization.groups.all(),
        exclude=exclude,
        what="a group",
        max_length=GROUP_NAME_MAX,
    )


@transaction.atomic
def group_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    description: str = "",
    request: HttpRequest | None = None,
    via: AuditActor | None = None,
) -> Group:
    name = _check_group_name(organization=organization, name=name, exclude=None)
    group = Group.objects.create(
        organization=organization, name=name, description=description.strip()
    )
    record(
        action=events.GROUP_CREATED,
        organization=organization,
        actor=via or actor,
        target=group,
        request=request,
    )
    return group


@transaction.atomic
def group_update(
    *,
    group: Group,
    actor: User,
    name: str,
    description: str,
    request: HttpRequest | None = None,
    via: AuditActor | None = None,
) -> Group:
    stored = (
        Group.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=group.pk)
    )
    name = _check_group_name(organization=stored.organization, name=name, exclude=stored)
    before = {"name": stored.name, "description": stored.description}
    stored.name, stored.description = name, description.strip()
    stored.save(update_fields=["name", "description", "updated_at"])
    after = {"name": stored.name, "description": stored.description}
    if before != after:
        # Explanations name groups, so compiled rules must pick up the new name.
        organization_bump_authz_version(organization=stored.organization)
        record(
            action=events.GROUP_UPDATED,
            organization=stored.organization,
            actor=via or actor,
            target=stored,
            data=diff(before, after),
            request=request,
        )
    return stored


def group_rules(group: Group) -> list[CompiledRule]:
    """The compiled rules of the policies attached to `group`: what its members hold
    through it."""
    policy_ids = PolicyAttachment.objects.filter(group=group).values_list("policy_id", flat=True)
    return compile_policy_rules(policy_ids)


def _principal_words(principal: Membership | Application) -> str:
    if isinstance(principal, Membership):
        return principal.user.email
    return f"application {principal.name}"


def _with_preview(data: dict[str, Any], preview: Mapping[str, Any] | None) -> dict[str, Any]:
    # The access diff its author previewed and confirmed (policies.preview), if any.
    return {**data, "preview": dict(preview)} if preview else data


@transaction.atomic
def group_delete(
    *,
    group: Group,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
    via: AuditActor | None = None,
) -> None:
    """Delete a group: its users and applications lose its policies at once. The audit
    event carries the access diff its author previewed and confirmed, if any."""
    # A copy: deleting clears the primary key of the instance deleted, and a previewed
    # deletion (rolled back) leaves the caller's group to be deleted for real.
    group = (
        Group.objects.select_for_update(of=("self",))
        .select_related("organization")
        .get(pk=group.pk)
    )
    organization = group.organization
    if group.members.exists() or group.applications.exists():
        # Its members lose its rules: a deny among them would be lifted.
        require_within_rights(
            organization=organization,
            actor=actor,
            request=request,
            before=group_rules(group),
            principals=f"the members of group {group.name}",
        )
    record(
        action=events.GROUP_DELETED,
        organization=organization,
        actor=via or actor,
        target=group,
        data=_with_preview(
            {"members": group.members.count(), "applications": group.applications.count()},
            preview,
        ),
        request=request,
    )
    group.delete()
    organization_bump_authz_version(organization=organization)


def _data_of(principal: Membership | Application) -> dict[str, Any]:
    if isinstance(principal, Membership):
        return {"user": principal.user.email}
    return {"application": {"id": str(principal.pk), "name": principal.name}}


def _change_group(
    *,
    group: Group,
    related: Any,
    principals: Sequence[Membership | Application],
    add: bool,
    event: events.EventType,
    actor: User,
    request: HttpRequest | None,
    preview: Mapping[str, Any] | None = None,
    via: AuditActor | None = None,
) -> int:
    """Add `principals` to, or take them out of, one of the group's relations
    (idempotent): how many changed. One check of the author's rights and one version
    bump for them all (the group's policies follow at once), one event each."""
    present = set(related.filter(pk__in=[p.pk for p in principals]).values_list("pk", flat=True))
    changing = list({p.pk: p for p in principals if (p.pk in present) != add}.values())
    if not changing:
        return 0
    # Joining gives the group's rules (leaving takes them, and any deny among them).
    rules = group_rules(group)
    require_within_rights(
        organization=group.organization,
        actor=actor,
        request=request,
        before=() if add else rules,
        after=rules if add else (),
        principals=(
            _principal_words(changing[0])
            if len(changing) == 1
            else f"{len(changing)} members of group {group.name}"
        ),
    )
    (related.add if add else related.remove)(*changing)
    organization_bump_authz_version(organization=group.organization)
    for principal in changing:
        record(
            action=event,
            organization=group.organization,
            actor=via or actor,
            target=group,
            data=_with_preview(_data_of(principal), preview),
            request=request,
        )
    return len(changing)


@transaction.atomic
def group_add_member(
    *,
    group: Group,
    membership: Membership,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
    via: AuditActor | None = None,
) -> bool:
    if membership.organization_id != group.organization_id:
        raise ValidationError("Choose a user of this organization.")
    return bool(
        _change_group(
            group=group,
            related=group.members,
            principals=[membership],
            add=True,
            event=events.GROUP_MEMBER_ADDED,
            actor=actor,
            request=request,
            preview=preview,
            via=via,
        )
    )


@transaction.atomic
def group_remove_member(
    *,
    group: Group,
    membership: Membership,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
    via: AuditActor | None = None,
) -> bool:
    return bool(
        _change_group(
            group=group,
            related=group.members,
            principals=[membership],
            add=False,
            event=events.GROUP_MEMBER_REMOVED,
            actor=actor,
            request=request,
            preview=preview,
            via=via,
        )
    )


@transaction.atomic
def group_change_members(
    *,
    group: Group,
    actor: User,
    add: Sequence[Membership] = (),
    remove: Sequence[Membership] = (),
    request: HttpRequest | None = None,
    via: AuditActor | None = None,
) -> int:
    """Take `remove` out of the group, then put `add` in (both idempotent): a provider's
    batch (SCIM), one rights check and one version bump per direction. How many changed."""
    if any(m.organization_id != group.organization_id for m in (*add, *remove)):
        raise ValidationError("Choose users of this organization.")
    changed = 0
    for memberships, adding in ((remove, False), (add, True)):
        if memberships:
            changed += _change_group(
                group=group,
                related=group.members,
                principals=memberships,
                add=adding,
                event=events.GROUP_MEMBER_ADDED if adding else events.GROUP_MEMBER_REMOVED,
                actor=actor,
                request=request,
                via=via,
            )
    return changed


def _application_change(
    group: Group,
    application: Application,
    *,
    add: bool,
    actor: User,
    request: HttpRequest | None,
    preview: Mapping[str, Any] | None,
) -> bool:
    if group.organization_id != application.organization_id:
        raise ValidationError("Choose a group of this organization.")
    return bool(
        _change_group(
            group=group,
            related=group.applications,
            principals=[application],
            add=add,
            event=events.GROUP_APPLICATION_ADDED if add else events.GROUP_APPLICATION_REMOVED,
            actor=actor,
            request=request,
            preview=preview,
        )
    )


@transaction.atomic
def group_add_application(
    *,
    group: Group,
    application: Application,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> bool:
    """Add an application to a group (idempotent); True when it was not in it yet."""
    return _application_change(
        group, application, add=True, actor=actor, request=request, preview=preview
    )


@transaction.atomic
def group_remove_application(
    *,
    group: Group,
    application: Application,
    actor: User,
    request: HttpRequest | None = None,
    preview: Mapping[str, Any] | None = None,
) -> bool:
    """Take an application out of a group (idempotent); True when it was in it."""
    return _application_change(
        group, application, add=False, actor=actor, request=request, preview=preview
    )
