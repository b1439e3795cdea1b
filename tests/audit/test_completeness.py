"""Every URL that writes records at least one audit event when it succeeds.

The URL conf is walked (`tests/audit/urlconf.py`): every pattern whose view accepts
POST, PUT, PATCH or DELETE must appear in one of two tables below, or
`test_every_write_url_is_in_the_table` fails and names it:

- `WRITES`: `url name -> builder(ctx) -> (url kwargs, POST data)`. The builder creates
  what the request needs (with factories) and returns the URL's kwargs (`org_id` is
  filled in) and the form data of a request that succeeds. The request is sent as the
  organization's owner (a fresh password confirmation in the session) unless the builder
  sets `ctx.client`; it must answer 200/201/204/302/303 and add at least one AuditEvent.
- `NO_EVENT`: writes that change nothing worth an event, with the reason.

To add a URL: write a builder of a few lines and add it to `WRITES`.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Application, Group, Organization
from policies.services import policies as policy_services
from policies.services import rules as rule_services
from tests.audit.urlconf import Route, routes
from tests.conftest import Org
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
    UserFactory,
)
from tests.federation.completeness import NO_EVENT_FEDERATION, WRITES_FEDERATION

OK_STATUSES = {200, 201, 204, 302, 303}
# Operators' admin writes are audited by `audit.admin.AuditedModelAdmin` (every admin uses
# it: tests/iamportal/test_admin.py); the admin's generic URLs are set aside, by prefix.
# The API's operations are walked by their own tests (tests/api/): ninja routes every method
# of a path through one view, so this walker, which reads Django's method decorators,
# would take every API URL for a write. Today the API writes nothing. SCIM is a bearer-token
# JSON API too, whose writes tests/scim asserts are audited.
EXCLUDED_PREFIXES = ("admin/", "api/v1/", "scim/v2/")


@dataclass
class Ctx:
    org: Org
    client: Client
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def organization(self) -> Organization:
        return self.org.organization


Builder = Callable[[Ctx], tuple[dict[str, Any], dict[str, Any]]]


def _sudo_client(user: Any) -> Client:
    """Signed in, with a fresh password confirmation (sensitive actions ask for one)."""
    client = Client()
    client.force_login(user)
    session = client.session
    session["_sudo"] = signing.dumps({"u": str(user.pk)}, salt="accounts.sudo")
    session.save()
    return client


# --------------------------------------------------------------------------- builders
# Each returns (url kwargs without org_id, POST data).


def _project(ctx: Ctx) -> Any:
    return ProjectFactory(organization=ctx.organization, name="web", description="")


def _custom_policy(ctx: Ctx) -> Any:
    return PolicyFactory(organization=ctx.organization, name="Devs")


def _rule(ctx: Ctx) -> Any:
    policy = _custom_policy(ctx)
    return RuleFactory(policy=policy, position=1), RuleFactory(policy=policy, position=2)


def _versioned_policy(ctx: Ctx) -> Any:
    """A custom policy at version 2, so that version 1 can be restored."""
    owner = ctx.org.owner.user
    policy = policy_services.policy_create(organization=ctx.organization, name="Devs", actor=owner)
    rule_services.rule_add(
        policy=policy, effect="allow", actions=["iam:users:list"], scope="organization", actor=owner
    )
    return policy


def _group(ctx: Ctx) -> Group:
    return GroupFactory(organization=ctx.organization, name="ops")


def _application(ctx: Ctx) -> Application:
    return ApplicationFactory(organization=ctx.organization, name="ci-bot")


def _rule_data(**extra: Any) -> dict[str, Any]:
    return {
        "effect": "allow",
        "actions": "projects:projects:list",
        "scope": "organization",
        **extra,
    }


def _api_key(ctx: Ctx) -> Any:
    from organizations.models import APIKey

    return APIKey.objects.create(
        organization=ctx.organization,
        access_key=f"IAMK{uuid.uuid4().hex[:16].upper()}",
        secret_hash="0" * 64,
        bearer_membership=ctx.org.owner,
    )


def _disabled_api_key(ctx: Ctx) -> Any:
    from organizations.services.api_keys import api_key_disable

    api_key = _api_key(ctx)
    api_key_disable(api_key=api_key, actor=None, reason="unused for 30 days")
    return api_key


def _used_principal(kind: str) -> Builder:
    """Shrink to used: a user or an application holding a broad custom policy directly,
    with one permission allowed just now (what the narrowed policy keeps)."""
    field = "membership" if kind == "user" else "application"

    def build(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
        from django.utils import timezone

        from policies.models import NO_PROJECT, PermissionUsage, PolicyAttachment

        subject: Any = ctx.org.tech if kind == "user" else _application(ctx)
        policy = _custom_policy(ctx)
        RuleFactory(policy=policy, position=1, actions=["projects:projects:list", "dns:zones:list"])
        PolicyAttachment.objects.create(
            organization=ctx.organization, policy=policy, **{field: subject}
        )
        PermissionUsage.objects.create(
            organization=ctx.organization,
            principal_type=kind,
            principal_id=subject.user_id if kind == "user" else subject.pk,
            action="projects:projects:list",
            project_id=NO_PROJECT,
            last_allowed_at=timezone.now(),
        )
        return {f"{field}_id": subject.pk}, {"name": "Narrow", "days": 90}

    return build


def _signup(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx.client = Client()
    return {}, {
        "full_name": "New Person",
        "email": "new.person@example.com",
        "password": "a-long-enough-passphrase-42",
        "organization_name": "Newco",
    }


def _login(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    user = UserFactory(email="login@example.com")
    user.set_password("a-long-enough-passphrase-42")
    user.save()
    ctx.client = Client()
    return {}, {"username": "login@example.com", "password": "a-long-enough-passphrase-42"}


def _leave(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx.client = _sudo_client(ctx.org.tech.user)
    return {}, {"confirm": ctx.organization.name}


def _step_down(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    MembershipFactory(organization=ctx.organization, is_owner=True)  # never the last owner
    return {}, {}


def _attached(ctx: Ctx) -> Any:
    return PolicyAttachmentFactory(policy=_custom_policy(ctx), membership=ctx.org.tech)


def _grouped_application(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from organizations.services.groups import group_add_application

    application, group = _application(ctx), _group(ctx)
    group_add_application(group=group, application=application, actor=ctx.org.owner.user)
    return {"application_id": application.pk, "group_id": group.pk}, {}


def _invitation(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from organizations.services.invitations import invitations_create

    issued = invitations_create(
        organization=ctx.organization, actor=ctx.org.owner, emails=["guest@example.com"]
    )
    return {"invitation_id": issued[0].invitation.pk}, {}


def _created_member(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from organizations.services.people import member_create

    created = member_create(
        organization=ctx.organization,
        actor=ctx.org.owner.user,
        email="made.here@example.com",
        full_name="Made Here",
    )
    return {"membership_id": created.membership.pk}, {}


def _token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


def _password_set(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from organizations.services.people import member_create

    created = member_create(
        organization=ctx.organization,
        actor=ctx.org.owner.user,
        email="sets.password@example.com",
        full_name="Sets Password",
    )
    ctx.client = Client()
    password = "a-fresh-passphrase-2026"
    return {"token": _token_of(created.link)}, {
        "new_password1": password,
        "new_password2": password,
    }


def _invitation_accept(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from organizations.services.invitations import invitations_create

    issued = invitations_create(
        organization=ctx.organization, actor=ctx.org.owner, emails=["joins@example.com"]
    )
    ctx.client = Client()  # a new person: creates an account as they accept
    return {"token": _token_of(issued[0].link)}, {
        "full_name": "Joins Here",
        "password": "a-fresh-passphrase-2026",
    }


def _other_session(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from accounts.models import UserSession

    other = UserSession.objects.create(user=ctx.org.owner.user, session_key="another-browser")
    return {"session_id": other.pk}, {}


def _enrolled_owner(ctx: Ctx) -> Any:
    from tests.accounts.helpers import enroll

    return enroll(ctx.org.owner.user)


def _password_reset_confirm(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    user = ctx.org.tech.user
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    ctx.client = Client()
    # Django moves the token from the link into the session, then posts to "set-password".
    first = reverse(
        "accounts:password_reset_confirm",
        kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)},
    )
    ctx.client.get(first)
    password = "a-fresh-passphrase-2026"
    return {"uidb64": uid, "token": "set-password"}, {
        "new_password1": password,
        "new_password2": password,
    }


def _backup_codes(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    _enrolled_owner(ctx)
    return {}, {}


def _mfa_remove(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from tests.accounts.helpers import code

    return {}, {"code": code(_enrolled_owner(ctx))}


def _mfa_confirm(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from accounts import mfa
    from tests.accounts.helpers import code

    device = mfa.mfa_enrollment_start(user=ctx.org.owner.user)
    return {}, {"code": code(device)}


def _mfa_verify(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from tests.accounts.helpers import code, password_step

    device = _enrolled_owner(ctx)
    ctx.client = Client()
    password_step(ctx.client, ctx.org.owner.user.email)  # the first step, before the code
    return {}, {"code": code(device)}


def _member_with_device(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from organizations.services.people import member_create
    from tests.accounts.helpers import enroll

    created = member_create(
        organization=ctx.organization,
        actor=ctx.org.owner.user,
        email="has.device@example.com",
        full_name="Has Device",
    )
    enroll(created.membership.user)
    return {"membership_id": created.membership.pk}, {}


def _member_locked_out(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from django.utils import timezone

    # The tech's deadline passed long ago; the owner's own grace period still runs.
    Organization.objects.filter(pk=ctx.organization.pk).update(
        mfa_required=True, mfa_required_since=timezone.now()
    )
    ctx.org.tech.mfa_grace_until = timezone.now() - datetime.timedelta(days=1)
    ctx.org.tech.save(update_fields=["mfa_grace_until"])
    return {"membership_id": ctx.org.tech.pk}, {}


def _viewing_as_billing(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    ctx.client.post(
        reverse("iamtools:view_as_user", args=[ctx.organization.pk, ctx.org.billing.pk])
    )
    return {}, {}


def _scim_token(ctx: Ctx) -> tuple[dict[str, Any], dict[str, Any]]:
    from scim.tokens import scim_token_create

    created = scim_token_create(
        organization=ctx.organization, actor=ctx.org.owner.user, name="Okta"
    )
    return {}, {"token": created.token.pk}


WRITES: dict[str, Builder] = {
    "accounts:end_session": _other_session,
    "accounts:password_reset_confirm": _password_reset_confirm,
    "accounts:end_other_sessions": lambda ctx: ({}, {}),
    "accounts:mfa_backup_codes": _backup_codes,
    "accounts:mfa_remove": _mfa_remove,
    "accounts:mfa_confirm": _mfa_confirm,
    "accounts:mfa_verify": _mfa_verify,
    "organizations:member_mfa_reset": _member_with_device,
    "organizations:member_mfa_unlock": _member_locked_out,
    "accounts:password_set": _password_set,
    "organizations:invitation_accept": _invitation_accept,
    # accounts
    "accounts:signup": _signup,
    "accounts:login": _login,
    "accounts:logout": lambda ctx: ({}, {}),
    # organizations and projects
    "organizations:list": lambda ctx: ({}, {"name": "Second org"}),
    "organizations:settings": lambda ctx: ({}, {"name": "Acme Renamed"}),
    "organizations:project_create": lambda ctx: ({}, {"name": "api", "description": ""}),
    "organizations:project_update": lambda ctx: (
        {"project_id": _project(ctx).pk},
        {"name": "web2", "description": "x"},
    ),
    "organizations:project_delete": lambda ctx: (
        {"project_id": _project(ctx).pk},
        {"confirm_name": "web"},
    ),
    "organizations:billing_contact_update": lambda ctx: (
        {},
        {
            "name": "Ada",
            "email": "billing@example.com",
            "company": "Acme",
            "address": "1 Main St",
            "country": "FR",
            "vat_number": "",
        },
    ),
    "organizations:security_settings_update": lambda ctx: (
        {},
        {
            "mfa_grace_days": 5,
            "login_failure_limit": 5,
            "session_max_age_hours": 12,
            "api_key_max_lifetime_days": "",
            "invitation_domains": "",
            "audit_retention_days": 60,
        },
    ),
    # users, ownership, invitations
    "organizations:leave": _leave,
    "organizations:owner_step_down": _step_down,
    "organizations:member_create": lambda ctx: (
        {},
        {"full_name": "Member One", "email": "member.one@example.com"},
    ),
    "organizations:user_suspend": lambda ctx: ({"membership_id": ctx.org.tech.pk}, {}),
    "organizations:user_reactivate": lambda ctx: (
        {"membership_id": MembershipFactory(organization=ctx.organization, status="suspended").pk},
        {},
    ),
    "organizations:user_make_owner": lambda ctx: ({"membership_id": ctx.org.tech.pk}, {}),
    "organizations:user_tags": lambda ctx: (
        {"membership_id": ctx.org.tech.pk},
        {"tags-TOTAL_FORMS": 1, "tags-INITIAL_FORMS": 0, "tags-0-key": "team", "tags-0-value": "a"},
    ),
    "organizations:application_tags": lambda ctx: (
        {"application_id": _application(ctx).pk},
        {"tags-TOTAL_FORMS": 1, "tags-INITIAL_FORMS": 0, "tags-0-key": "team", "tags-0-value": "a"},
    ),
    "organizations:user_remove": lambda ctx: (
        {"membership_id": ctx.org.tech.pk},
        {"confirm": ctx.org.tech.user.email},
    ),
    "organizations:user_groups": lambda ctx: (
        {"membership_id": ctx.org.tech.pk},
        {"add": _group(ctx).pk},
    ),
    "organizations:invite": lambda ctx: ({}, {"emails": "guest@example.com", "role": "tech"}),
    # groups
    "organizations:group_create": lambda ctx: ({}, {"name": "devs", "description": ""}),
    "organizations:group_update": lambda ctx: (
        {"group_id": _group(ctx).pk},
        {"name": "ops2", "description": "d"},
    ),
    "organizations:group_delete": lambda ctx: ({"group_id": _group(ctx).pk}, {"confirm": "ops"}),
    "organizations:group_members": lambda ctx: (
        {"group_id": _group(ctx).pk},
        {"add_user": ctx.org.tech.pk},
    ),
    # applications and API keys
    "organizations:application_create": lambda ctx: ({}, {"name": "deployer", "description": ""}),
    "organizations:application_update": lambda ctx: (
        {"application_id": _application(ctx).pk},
        {"name": "ci-bot-2", "description": "d"},
    ),
    "organizations:application_delete": lambda ctx: (
        {"application_id": _application(ctx).pk},
        {"confirm_name": "ci-bot", "confirm": "ci-bot"},
    ),
    "organizations:application_group_add": lambda ctx: (
        {"application_id": _application(ctx).pk},
        {"group": _group(ctx).pk},
    ),
    "organizations:api_key_create": lambda ctx: ({}, {"bearer": "self", "description": "ci"}),
    "organizations:api_key_delete": lambda ctx: ({"api_key_id": _api_key(ctx).pk}, {}),
    "organizations:api_key_enable": lambda ctx: ({"api_key_id": _disabled_api_key(ctx).pk}, {}),
    # policies
    "policies:policy_create": lambda ctx: ({}, {"name": "Ops", "description": "", "labels": ""}),
    "policies:policy_update": lambda ctx: (
        {"policy_id": _custom_policy(ctx).pk},
        {"name": "Devs2", "description": "d", "labels": ""},
    ),
    "policies:policy_duplicate": lambda ctx: ({"policy_id": _custom_policy(ctx).pk}, {}),
    "policies:policy_delete": lambda ctx: (
        {"policy_id": _custom_policy(ctx).pk},
        {"confirm_name": "Devs", "confirm": "Devs"},
    ),
    "policies:rule_add": lambda ctx: ({"policy_id": _custom_policy(ctx).pk}, _rule_data()),
    "policies:rule_update": lambda ctx: (
        (lambda rules: {"policy_id": rules[0].policy_id, "rule_id": rules[0].pk})(_rule(ctx)),
        _rule_data(effect="deny"),
    ),
    "policies:rule_move": lambda ctx: (
        (lambda rules: {"policy_id": rules[0].policy_id, "rule_id": rules[0].pk})(_rule(ctx)),
        {"direction": "down"},
    ),
    "policies:rule_remove": lambda ctx: (
        (lambda rules: {"policy_id": rules[0].policy_id, "rule_id": rules[0].pk})(_rule(ctx)),
        {},
    ),
    "policies:policy_attach": lambda ctx: (
        {"policy_id": _custom_policy(ctx).pk},
        {"membership": ctx.org.tech.pk},
    ),
    "policies:principal_policy_attach": lambda ctx: (
        {"kind": "group", "principal_id": _group(ctx).pk},
        {"policy": _custom_policy(ctx).pk},
    ),
    "policies:policy_detach": lambda ctx: (
        (lambda a: {"policy_id": a.policy_id, "principal_id": a.membership_id})(_attached(ctx)),
        {},
    ),
    "policies:policy_detach_principal": lambda ctx: (
        (lambda a: {"policy_id": a.policy_id, "kind": "user", "principal_id": a.membership_id})(
            _attached(ctx)
        ),
        {},
    ),
    "policies:principal_policy_detach": lambda ctx: (
        (lambda a: {"kind": "user", "principal_id": a.membership_id, "policy_id": a.policy_id})(
            _attached(ctx)
        ),
        {},
    ),
    "organizations:application_group_remove": _grouped_application,
    "organizations:invitation_resend": _invitation,
    "organizations:invitation_revoke": _invitation,
    "organizations:user_password_link": _created_member,
    "policies:guardrail_rule_add": lambda ctx: ({}, _rule_data(effect="deny")),
    "policies:version_restore": lambda ctx: (
        {"policy_id": _versioned_policy(ctx).pk, "number": 1},
        {},
    ),
    # the audit trail itself
    "audit:verify": lambda ctx: ({}, {}),
    # viewing the console as another principal (read-only, audited at start and stop)
    "iamtools:view_as_user": lambda ctx: ({"membership_id": ctx.org.billing.pk}, {}),
    "iamtools:view_as_application": lambda ctx: ({"application_id": _application(ctx).pk}, {}),
    "iamtools:view_as_stop": _viewing_as_billing,
    # shrink to used (from the unused-access report)
    "iamtools:shrink_user_save": _used_principal("user"),
    "iamtools:shrink_application_save": _used_principal("application"),
    # SCIM tokens
    "scim:token_add": lambda ctx: ({}, {"name": "Okta"}),
    "scim:token_revoke": _scim_token,
}

NO_EVENT: dict[str, str] = {
    "accounts:confirm": "confirming it is you only refreshes a time-boxed session flag; a "
    "wrong password there counts towards the lock-out, which is audited",
    "policies:condition_test": "evaluates a condition against sample facts; changes nothing",
    "accounts:password_reset": "sends a reset link when the address exists; nothing changes "
    "until the link is used (accounts:password_reset_confirm)",
}
# Single sign-on's writes (tests/federation/completeness.py builds them).
WRITES.update(WRITES_FEDERATION)
NO_EVENT.update(NO_EVENT_FEDERATION)


def _write_routes() -> dict[str, Route]:
    found: dict[str, Route] = {}
    for route in routes():
        if route.writes and not route.route.startswith(EXCLUDED_PREFIXES):
            found.setdefault(route.name, route)
    return found


def test_every_write_url_is_in_the_table() -> None:
    writes = _write_routes()
    tabled = WRITES.keys() | NO_EVENT.keys()
    missing = sorted(set(writes) - tabled)
    assert not missing, (
        "These URLs accept writes but tests/audit/test_completeness.py does not know them: "
        + ", ".join(f"{name} ({writes[name].route})" for name in missing)
        + ". Add a builder to WRITES that makes the request succeed (it must record an "
        "audit event), or, with a reason, to NO_EVENT."
    )
    stale = sorted(tabled - set(writes))
    assert not stale, f"No such write URL any more, remove from the tables: {stale}"


def test_the_walker_reads_the_declared_methods() -> None:
    writes = _write_routes()
    assert writes["audit:verify"].methods == {"POST"}
    assert "audit:event_list" not in writes  # @require_GET
    assert "organizations:project_update" in writes  # GET and POST


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_successful_write_records_an_event(name: str, org: Org) -> None:
    route = _write_routes().get(name)
    if route is None:
        pytest.fail(f"{name} is in WRITES but no longer a write URL.")
    ctx = Ctx(org=org, client=_sudo_client(org.owner.user))
    kwargs, data = WRITES[name](ctx)
    if "<uuid:org_id>" in route.route:
        kwargs = {"org_id": org.organization.pk, **kwargs}
    before = AuditEvent.objects.count()
    response = ctx.client.post(reverse(name, kwargs=kwargs), data)
    assert response.status_code in OK_STATUSES, (
        f"POST {name} answered {response.status_code}: fix its builder's data"
    )
    assert AuditEvent.objects.count() > before, f"POST {name} succeeded without an audit event"
