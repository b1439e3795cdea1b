"""Writes an identity provider makes through SCIM: members and groups of one organization.

They go through the organization's services (organizations.services.people and .groups),
which hold the invariants, the authorization version bump and the audit event: the token
is recorded as the actor (`ScimToken.audit_actor`) and acts as the owner who created it,
whose rights bound every grant (the delegation ceiling; the token works only while they
are an active owner, scim.tokens). What SCIM adds stays here: the provider's ids and name
parts, its errors (409 on a taken name), and its rule that owners are managed in the
console only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accounts.models import User
from accounts.sessions import sessions_end_others
from audit import events
from audit.services import diff, record
from organizations.models import Group, Membership
from organizations.services.groups import (
    group_change_members,
    group_create,
    group_delete,
    group_update,
)
from organizations.services.organizations import organization_bump_authz_version
from organizations.services.people import (
    lock_organization,
    member_create,
    membership_reactivate,
    membership_remove,
    membership_suspend,
)
from scim.errors import ScimError, invalid_value
from scim.models import ProvisionedGroup, ProvisionedUser, ScimToken

EXTERNAL_ID_MAX = ProvisionedUser._meta.get_field("external_id").max_length
NAME_MAX = User._meta.get_field("full_name").max_length
OWNERS_REFUSED = "Owners are managed in the console, never through SCIM."


@dataclass(frozen=True)
class UserValues:
    """What SCIM sets on a user; PUT gives them all, PATCH edits the current ones."""

    user_name: str
    external_id: str = ""
    given_name: str = ""
    family_name: str = ""
    formatted: str = ""
    display_name: str = ""
    active: bool = True

    @property
    def full_name(self) -> str:
        joined = f"{self.given_name} {self.family_name}".strip()
        return (self.formatted or self.display_name or joined).strip()[:NAME_MAX]


def current_values(membership: Membership) -> UserValues:
    provisioned = getattr(membership, "scim", None)
    return UserValues(
        user_name=membership.user.email,
        external_id=provisioned.external_id if provisioned else "",
        given_name=provisioned.given_name if provisioned else "",
        family_name=provisioned.family_name if provisioned else "",
        formatted=membership.user.full_name,
        active=membership.is_active,
    )


def _record(
    token: ScimToken,
    action: events.EventType,
    *,
    target: Membership | Group,
    data: dict[str, Any],
    request: HttpRequest | None,
) -> None:
    """A write only SCIM makes (the provider's ids, a member account's address and name):
    audited with the token as the actor, as the services record theirs."""
    record(
        action=action,
        organization=token.organization,
        actor=token.audit_actor,
        target=target,
        target_label=target.user.email if isinstance(target, Membership) else "",
        data=data,
        request=request,
    )


def _owner(token: ScimToken) -> Membership:
    """The membership the token acts as: its creator's (an active owner when the token
    was authenticated; the services re-read it under the organization's lock)."""
    owner = (
        Membership.objects.select_related("user")
        .filter(organization=token.organization, user_id=token.created_by_id)
        .first()
    )
    if owner is None:
        raise ScimError(401, "A valid SCIM token of this organization is required.")
    return owner


def _email(user_name: str) -> str:
    try:
        return User.objects.normalize_email(user_name)
    except ValidationError:
        raise invalid_value("userName must be an email address.") from None


def _check_external_id(external_id: str) -> None:
    if len(external_id) > EXTERNAL_ID_MAX:
        raise invalid_value(f"externalId is at most {EXTERNAL_ID_MAX} characters.")


def _check_lengths(values: UserValues) -> None:
    _check_external_id(values.external_id)
    for part in (values.given_name, values.family_name):
        if len(part) > NAME_MAX:
            raise invalid_value(f"A name part is at most {NAME_MAX} characters.")


def _taken(email: str) -> ScimError:
    return ScimError(409, f"An account with userName {email} already exists.", "uniqueness")


@transaction.atomic
def scim_user_create(
    *, token: ScimToken, values: UserValues, request: HttpRequest | None = None
) -> Membership:
    """A member account and its membership (`member_create`: no password, the provider
    signs it in), suspended at once when `values.active` is false."""
    _check_lengths(values)
    email = _email(values.user_name)
    if User.objects.filter(email=email).exists():
        raise _taken(email)
    membership = member_create(
        organization=token.organization,
        actor=token.created_by,
        email=email,
        full_name=values.full_name,
        request=request,
        via=token.audit_actor,
    ).membership
    membership.scim = ProvisionedUser.objects.create(
        membership=membership,
        external_id=values.external_id,
        given_name=values.given_name,
        family_name=values.family_name,
    )
    if not values.active:
        _suspend(token, membership, request)
    return membership


def _locked_membership(token: ScimToken, membership: Membership) -> Membership:
    lock_organization(token.organization)
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "organization")
        .filter(pk=membership.pk, organization=token.organization)
        .first()
    )
    if membership is None:
        raise ScimError(404, "No such user.")
    if membership.is_owner:
        raise ScimError(403, OWNERS_REFUSED, "mutability")
    return membership


def _update_account(
    token: ScimToken, membership: Membership, values: UserValues, request: HttpRequest | None
) -> None:
    """The account's email and name: only a member account's (a guest's is their own)."""
    user = membership.user
    email = _email(values.user_name)
    before = {"email": user.email, "full_name": user.full_name}
    after = {"email": email, "full_name": values.full_name or user.full_name}
    if before == after:
        return
    if membership.kind != "member":
        if email != user.email:
            raise ScimError(
                400,
                f"{user.email} is a guest account: its owner changes its address.",
                "mutability",
            )
        return  # a guest's name is theirs too; the provider's copy stays in its own record
    if email != user.email:
        if not token.organization.allows_invitation_to(email):
            domains = ", ".join(token.organization.invitation_domains)
            raise invalid_value(f"Accounts are limited to addresses at {domains}.")
        if User.objects.filter(email=email).exclude(pk=user.pk).exists():
            raise _taken(email)
    user.email, user.full_name = after["email"], after["full_name"]
    try:
        with transaction.atomic():
            user.save(update_fields=["email", "full_name"])
    except IntegrityError:
        raise _taken(email) from None
    # Explanations and audit labels name people by email.
    organization_bump_authz_version(organization=token.organization)
    _record(
        token, events.USER_UPDATED, target=membership, data=diff(before, after), request=request
    )


def _suspend(token: ScimToken, membership: Membership, request: HttpRequest | None) -> None:
    membership.status = membership_suspend(
        membership=membership,
        actor=_owner(token),
        request=request,
        reason="Deactivated by the identity provider.",
        via=token.audit_actor,
    ).status
    if membership.kind == "member":
        # The account exists only here: its browsers are signed out now. A guest keeps
        # its sessions for its other organizations; this one refuses it from now on.
        sessions_end_others(user=membership.user, keep=None)


@transaction.atomic
def scim_user_update(
    *,
    token: ScimToken,
    membership: Membership,
    values: UserValues,
    request: HttpRequest | None = None,
) -> Membership:
    """Set a user's values (PUT, or PATCH after its operations): the account's email and
    name (member accounts only), the provider's ids and name parts, and `active`, which
    suspends (ending a member account's sessions) or reactivates the membership."""
    membership = _locked_membership(token, membership)
    _check_lengths(values)
    _update_account(token, membership, values, request)
    provisioned, _ = ProvisionedUser.objects.get_or_create(membership=membership)
    fields = ("external_id", "given_name", "family_name")
    kept = (provisioned.external_id, provisioned.given_name, provisioned.family_name)
    wanted = (values.external_id, values.given_name, values.family_name)
    if kept != wanted:
        provisioned.external_id, provisioned.given_name, provisioned.family_name = wanted
        provisioned.save()
        _record(
            token,
            events.USER_UPDATED,
            target=membership,
            data=diff(dict(zip(fields, kept, strict=True)), dict(zip(fields, wanted, strict=True))),
            request=request,
        )
    if values.active and not membership.is_active:
        membership.status = membership_reactivate(
            membership=membership, actor=_owner(token), request=request, via=token.audit_actor
        ).status
    elif not values.active and membership.is_active:
        _suspend(token, membership, request)
    return membership


@transaction.atomic
def scim_user_delete(
    *, token: ScimToken, membership: Membership, request: HttpRequest | None = None
) -> None:
    """Remove the membership; a member account goes with it (it exists only here)."""
    membership = _locked_membership(token, membership)
    membership_remove(
        membership=membership, actor=_owner(token), request=request, via=token.audit_actor
    )


def _refuse_taken_name(token: ScimToken, name: str, exclude: Group | None) -> None:
    """A taken name is SCIM's uniqueness conflict (409); the group services check the
    rest of the name."""
    clash = token.organization.groups.filter(name__iexact=name.strip())
    if exclude is not None:
        clash = clash.exclude(pk=exclude.pk)
    if name.strip() and clash.exists():
        raise ScimError(409, f'A group named "{name.strip()}" already exists.', "uniqueness")


def _refuse_owners(group: Group, memberships: Sequence[Membership], *, add: bool) -> None:
    """Owners are never put in or taken out of a group through SCIM. Naming one already
    where asked changes nothing and passes: a provider's full member list may hold an
    owner the console put in the group."""
    owners = {m.pk for m in memberships if m.is_owner}
    if not owners:
        return
    present = set(group.members.filter(pk__in=owners).values_list("pk", flat=True))
    if (owners - present) if add else present:
        raise ScimError(403, OWNERS_REFUSED, "mutability")


def _change_members(
    token: ScimToken,
    group: Group,
    *,
    add: Sequence[Membership] = (),
    remove: Sequence[Membership] = (),
    request: HttpRequest | None,
) -> None:
    _refuse_owners(group, add, add=True)
    _refuse_owners(group, remove, add=False)
    group_change_members(
        group=group,
        actor=token.created_by,
        add=add,
        remove=remove,
        request=request,
        via=token.audit_actor,
    )


@transaction.atomic
def scim_group_create(
    *,
    token: ScimToken,
    name: str,
    external_id: str = "",
    members: Sequence[Membership] = (),
    request: HttpRequest | None = None,
) -> Group:
    _check_external_id(external_id)
    _refuse_taken_name(token, name, exclude=None)
    group = group_create(
        organization=token.organization,
        actor=token.created_by,
        name=name,
        request=request,
        via=token.audit_actor,
    )
    group.scim = ProvisionedGroup.objects.create(group=group, external_id=external_id)
    _change_members(token, group, add=members, request=request)
    return group


@dataclass(frozen=True)
class GroupChange:
    """A group's new name and ids (None: unchanged) and its members' changes; `members`
    not None replaces them all."""

    name: str | None = None
    external_id: str | None = None
    add: Sequence[Membership] = ()
    remove: Sequence[Membership] = ()
    members: Sequence[Membership] | None = None


@transaction.atomic
def scim_group_update(
    *, token: ScimToken, group: Group, change: GroupChange, request: HttpRequest | None = None
) -> Group:
    lock_organization(token.organization)
    group = (
        Group.objects.select_for_update(of=("self",))
        .filter(pk=group.pk, organization=token.organization)
        .first()
    )
    if group is None:
        raise ScimError(404, "No such group.")
    if change.name is not None and change.name.strip() != group.name:
        _refuse_taken_name(token, change.name, exclude=group)
        group = group_update(
            group=group,
            actor=token.created_by,
            name=change.name,
            description=group.description,
            request=request,
            via=token.audit_actor,
        )
    if change.external_id is not None:
        _check_external_id(change.external_id)
        provisioned, _ = ProvisionedGroup.objects.get_or_create(group=group)
        if provisioned.external_id != change.external_id:
            before = provisioned.external_id
            provisioned.external_id = change.external_id
            provisioned.save()
            _record(
                token,
                events.GROUP_UPDATED,
                target=group,
                data=diff({"external_id": before}, {"external_id": change.external_id}),
                request=request,
            )
    if change.members is not None:
        wanted = {m.pk for m in change.members}
        leaving = list(group.members.exclude(pk__in=wanted).select_related("user"))
        _change_members(token, group, add=change.members, remove=leaving, request=request)
    _change_members(token, group, add=change.add, remove=change.remove, request=request)
    return group


@transaction.atomic
def scim_group_delete(
    *, token: ScimToken, group: Group, request: HttpRequest | None = None
) -> None:
    """Delete a group (`group_delete`: its members lose its policies at once); never one
    that holds owners."""
    lock_organization(token.organization)
    if group.members.filter(is_owner=True).exists():
        raise ScimError(403, "This group holds owners: delete it in the console.", "mutability")
    group_delete(group=group, actor=token.created_by, request=request, via=token.audit_actor)
