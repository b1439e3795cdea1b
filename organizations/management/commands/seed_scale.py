"""`manage.py seed_scale`: one organization the size of a large customer (issue #15).

Builds, in minutes, an organization of 10,000 users, 500 groups, 5,000 custom policies
(25,000 rules), 2,000 applications, 20,000 API keys, 200 projects and 1,000,000 audit
events (every size an option), for `make bench-scale` and for profiling by hand.

Rows go in with `bulk_create` in batches: the per-row services would take hours. What the
services guarantee still holds: every rule shape compiles strictly (checked once per
shape with `compile_rule(strict=True)`), project-scoped rules name projects of the
organization, attachments name exactly one principal, API keys are made and hashed by
`organizations.services.api_keys`' own functions, users are accounts created by the
organization (no usable password) except the owner and the probe, and the audit events
form a valid hash chain built exactly as `AuditEvent._seal` builds it (`verify_audit`
passes). The owner and a non-owner "probe" (about 25 policies through 5 groups) get
known passwords, printed at the end; neither has MFA.

Refuses when the organization exists; `--replace` deletes it and builds it again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from accounts.tokens import token_digest
from audit import events
from audit.chain import HASHED_FIELDS, content_hash, normal_data
from audit.models import AuditChain, AuditEvent
from audit.services import redact
from organizations.models import (
    APIKey,
    Application,
    BillingContact,
    Group,
    Invoice,
    Membership,
    Organization,
    Project,
    Resource,
)
from organizations.services.api_keys import new_access_key, new_secret
from organizations.services.organizations import DEFAULT_PROJECT_NAME, organization_name_clean
from policies import catalogue
from policies.evaluator import compile_rule
from policies.models import Policy, PolicyAttachment, Rule
from policies.services.policies import sync_managed_policies

OWNER_PASSWORD = "scale-owner-2026"  # noqa: S105 (a benchmark login, printed on purpose)
PROBE_PASSWORD = "scale-probe-2026"  # noqa: S105
BATCH = 2000
EVENT_BATCH = 5000
GROUPS_PER_USER = 5
POLICIES_PER_GROUP = 6
PROBE_GROUPS = 5
# The probe's 5 groups hold 25 policies: these managed ones (so it may read the main
# pages) and custom ones for the rest.
PROBE_MANAGED = ("ReadOnlyAccess", "IAMReadOnly", "AuditReader", "BillingReadOnly")
TEAMS = ("web", "data", "platform", "mobile", "security")
OFFICE = 'ip_in_range(request.ip, "10.0.0.0/8")'


@dataclass(frozen=True)
class Shape:
    """A rule as authors write them; rules of the big organization cycle over these."""

    effect: str
    actions: tuple[str, ...]
    scope: str
    condition: str = ""


SHAPES: tuple[Shape, ...] = (
    Shape("allow", ("IAMReadOnly",), "organization"),
    Shape("allow", ("compute:instances:*",), "projects"),
    Shape(
        "allow",
        ("storage:buckets:read", "storage:buckets:list"),
        "all_projects",
        'request.user_agent.matches("^corp-")',
    ),
    Shape("deny", ("compute:instances:delete",), "all_projects"),
    Shape("allow", ("InstancesFullAccess", "projects:projects:read"), "projects", OFFICE),
    Shape("allow", ("dns:zones:*",), "projects", "request.mfa"),
    Shape("allow", ("billing:invoices:list", "billing:invoices:read"), "organization"),
    Shape("allow", ("iam:users:list", "iam:users:read", "iam:groups:list"), "organization", OFFICE),
    Shape("allow", ("AllProductsReadOnly",), "all_projects"),
    Shape(
        "allow",
        ("compute:instances:*",),
        "all_projects",
        'resource.tags["team"] == principal.tags["team"]',
    ),
    Shape("deny", ("storage:buckets:delete",), "projects"),
    Shape("allow", ("audit:events:list",), "organization"),
)

# Audit event kinds, by weight: (event type, actor kind, target kind).
EVENT_MIX = (
    (events.ACCOUNT_SIGNED_IN, "user", "self", 40),
    (events.get("authz.access.denied"), "user", "permission", 14),
    (events.get("iam.policy.attached"), "owner", "policy", 10),
    (events.get("iam.group.member_added"), "owner", "group", 10),
    (events.get("projects.resource.updated"), "application", "resource", 10),
    (events.get("iam.api_key.created"), "user", "api_key", 6),
    (events.ACCOUNT_SIGN_IN_FAILED, "none", "email", 6),
    (events.get("iam.user.updated"), "owner", "membership", 4),
)
IPS = (
    *(f"10.{a}.{b}.{c}" for a, b, c in itertools.product((1, 20), (0, 7), (3, 9, 44))),
    "203.0.113.9",
    "198.51.100.23",
    "2001:db8::1",
)
USER_AGENTS = ("Mozilla/5.0 (X11; Linux x86_64)", "corp-cli/2.1", "curl/8.5", "corp-web")
PERMISSIONS = tuple(sorted(catalogue.ACTIONS))[:40]


class Command(BaseCommand):
    help = "Build one organization of a large customer's size (bulk, with valid invariants)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", default="Scale")
        parser.add_argument("--users", type=int, default=10_000)
        parser.add_argument("--groups", type=int, default=500)
        parser.add_argument("--policies", type=int, default=5_000)
        parser.add_argument("--rules-per-policy", type=int, default=5)
        parser.add_argument("--applications", type=int, default=2_000)
        parser.add_argument("--api-keys", type=int, default=20_000)
        parser.add_argument("--projects", type=int, default=200)
        parser.add_argument("--audit-events", type=int, default=1_000_000)
        parser.add_argument("--seed", type=int, default=15, help="Random seed (same data).")
        parser.add_argument(
            "--replace", action="store_true", help="Delete the organization first if it exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.rng = random.Random(options["seed"])  # noqa: S311 (same data each run, no secret)
        self.started = time.monotonic()
        name = organization_name_clean(options["organization"])
        slug = slugify(name) or "scale"
        self.domain = f"{slug}.scale.example"
        self.owner_email = f"owner@{self.domain}"
        self.probe_email = f"probe@{self.domain}"
        if options["groups"] < PROBE_GROUPS:
            raise CommandError(f"--groups must be at least {PROBE_GROUPS} (the probe's).")
        if options["users"] < 2 or options["policies"] < 25 or options["projects"] < 1:
            raise CommandError("Use at least 2 users, 25 policies and 1 project.")
        existing = Organization.objects.filter(
            name=name, memberships__user__email=self.owner_email
        ).first()
        if existing is not None:
            if not options["replace"]:
                raise CommandError(
                    f"Organization {name!r} ({existing.pk}) exists: pass --replace to rebuild it."
                )
            self._delete(existing)
        sync_managed_policies()
        self._check_shapes()
        with transaction.atomic():
            organization = self._build(name, options)
        self._step("done")
        self._print(organization)

    # ------------------------------------------------------------------ steps

    def _step(self, what: str) -> None:
        self.stdout.write(f"  [{time.monotonic() - self.started:7.1f} s] {what}")

    def _delete(self, organization: Organization) -> None:
        self._step(f"deleting {organization.name} ({organization.pk})")
        with transaction.atomic():
            # The trail goes with its organization: the purge's raw delete, not row by row.
            AuditEvent.objects.filter(organization=organization).purge_prefix()
            organization.delete()

    def _check_shapes(self) -> None:
        """Each rule shape compiles strictly, as `rule_add` would insist before saving."""
        for index, shape in enumerate(SHAPES, start=1):
            compile_rule(
                policy_id=str(uuid.uuid4()),
                policy_name="shape",
                rule_index=index,
                effect=shape.effect,
                actions=shape.actions,
                scope=shape.scope,
                project_ids=[str(uuid.uuid4())] if shape.scope == "projects" else [],
                condition=shape.condition,
                strict=True,
            )

    def _build(self, name: str, options: dict[str, Any]) -> Organization:
        rng = self.rng
        owner = self._login_user(self.owner_email, OWNER_PASSWORD, "Scale Owner")
        probe = self._login_user(self.probe_email, PROBE_PASSWORD, "Pat Probe")
        # organization_create's rows; its ORGANIZATION_CREATED event opens the chain below.
        organization = Organization.objects.create(name=name, audit_retention_days=365)
        self.organization = organization
        default = Project.objects.create(
            organization=organization,
            name=DEFAULT_PROJECT_NAME,
            description="Created with the organization.",
            is_default=True,
        )
        owner_membership = Membership.objects.create(
            organization=organization, user=owner, is_owner=True
        )
        probe_membership = Membership.objects.create(
            organization=organization, user=probe, tags={"team": "web"}
        )

        projects = [
            default,
            *self._bulk(
                Project,
                (
                    Project(organization=organization, name=f"project-{i:04d}", description="")
                    for i in range(1, options["projects"])
                ),
            ),
        ]
        resources = self._bulk(
            Resource,
            (
                Resource(
                    organization=organization,
                    project=project,
                    type=type_key,
                    name=f"{project.name}-{type_key.split(':')[1]}-{n}",
                    tags={"team": TEAMS[(i + n) % len(TEAMS)], "env": ("prod", "staging")[n % 2]},
                )
                for i, project in enumerate(projects)
                for n, type_key in enumerate(catalogue.RESOURCE_TYPES)
            ),
        )
        self._step(f"{len(projects)} projects, {len(resources)} resources")

        users = self._bulk(
            User,
            (
                User(
                    email=f"user{i:05d}@{self.domain}",
                    full_name=f"User {i:05d}",
                    managed_by=organization,
                    # Member accounts set their password by link: none usable until then.
                    password=make_password(None),
                )
                for i in range(options["users"] - 2)
            ),
        )
        members = self._bulk(
            Membership,
            (
                Membership(
                    organization=organization,
                    user=user,
                    status=Membership.Status.SUSPENDED if i % 50 == 49 else "active",
                    tags={"team": TEAMS[i % len(TEAMS)]} if i % 3 == 0 else {},
                )
                for i, user in enumerate(users)
            ),
        )
        memberships = [owner_membership, probe_membership, *members]
        self._step(f"{len(memberships)} users")

        groups = self._bulk(
            Group,
            (
                Group(
                    organization=organization,
                    name=f"probe-team-{i + 1}" if i < PROBE_GROUPS else f"group-{i:04d}",
                    description="Scale group.",
                )
                for i in range(options["groups"])
            ),
        )
        probe_groups, other_groups = groups[:PROBE_GROUPS], groups[PROBE_GROUPS:] or groups
        group_members = [(g, probe_membership) for g in probe_groups]
        for membership in members:
            for group in rng.sample(other_groups, min(GROUPS_PER_USER, len(other_groups))):
                group_members.append((group, membership))
        through = Group.members.through
        self._bulk(
            through,
            (through(group_id=g.pk, membership_id=m.pk) for g, m in group_members),
            returning=False,
        )
        self._step(f"{len(groups)} groups, {len(group_members)} memberships of groups")

        applications = self._bulk(
            Application,
            (
                Application(
                    organization=organization,
                    name=f"app-{i:05d}",
                    description="Scale application.",
                    created_by=owner,
                    tags={"team": TEAMS[i % len(TEAMS)]},
                )
                for i in range(options["applications"])
            ),
        )
        through = Group.applications.through
        self._bulk(
            through,
            (
                through(group_id=other_groups[i % len(other_groups)].pk, application_id=a.pk)
                for i, a in enumerate(applications)
            ),
            returning=False,
        )
        self._step(f"{len(applications)} applications")

        policies, rules = self._policies(organization, options, projects)
        self._step(f"{len(policies)} policies, {rules} rules")
        attachments = self._attachments(
            organization, policies, memberships[2:], groups, probe_groups, applications
        )
        self._step(f"{attachments} attachments")

        keys = self._api_keys(organization, options["api_keys"], owner, members, applications)
        self._step(f"{len(keys)} API keys")
        self._billing(organization)

        count = self._audit_trail(
            organization,
            options["audit_events"],
            owner=owner,
            memberships=memberships,
            groups=groups,
            policies=policies,
            applications=applications,
            resources=resources,
            keys=keys,
        )
        self._step(f"{count} audit events")
        # Compiled permissions cached by version go stale, as after any service write.
        Organization.objects.filter(pk=organization.pk).update(authz_version=F("authz_version") + 1)
        self.probe_membership = probe_membership
        return organization

    def _login_user(self, email: str, password: str, full_name: str) -> User:
        """An account that signs in with a known password (no MFA); kept across rebuilds."""
        user = User.objects.filter(email=email).first()
        if user is None:
            return User.objects.create_user(email=email, password=password, full_name=full_name)
        user.set_password(password)
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
        return user

    def _bulk(
        self, model: type[models.Model], rows: Iterator[Any], *, returning: bool = True
    ) -> list[Any]:
        created: list[Any] = []
        for batch in _batches(rows, BATCH):
            model.objects.bulk_create(batch)
            if returning:
                created.extend(batch)
        return created

    def _policies(
        self, organization: Organization, options: dict[str, Any], projects: list[Project]
    ) -> tuple[list[Policy], int]:
        rng = self.rng
        per_policy = options["rules_per_policy"]
        policies = self._bulk(
            Policy,
            (
                Policy(
                    organization=organization,
                    name=f"policy-{i:05d}",
                    description="Scale policy.",
                    labels=["scale", TEAMS[i % len(TEAMS)]],
                )
                for i in range(options["policies"])
            ),
        )
        rule_projects: list[tuple[Rule, Project]] = []

        def rules() -> Iterator[Rule]:
            for p, policy in enumerate(policies):
                for position in range(1, per_policy + 1):
                    shape = SHAPES[(p * per_policy + position) % len(SHAPES)]
                    rule = Rule(
                        policy=policy,
                        position=position,
                        effect=shape.effect,
                        actions=list(shape.actions),
                        scope=shape.scope,
                        condition=shape.condition,
                    )
                    if shape.scope == "projects":
                        for project in rng.sample(projects, min(2, len(projects))):
                            rule_projects.append((rule, project))
                    yield rule

        created = self._bulk(Rule, rules())
        through = Rule.projects.through
        self._bulk(
            through,
            (through(rule_id=r.pk, project_id=p.pk) for r, p in rule_projects),
            returning=False,
        )
        return policies, len(created)

    def _attachments(
        self,
        organization: Organization,
        policies: list[Policy],
        members: list[Membership],
        groups: list[Group],
        probe_groups: list[Group],
        applications: list[Application],
    ) -> int:
        """Policies through groups (most of a user's rules), some direct, one per app."""
        rng = self.rng
        managed = {p.name: p for p in Policy.objects.filter(kind=Policy.Kind.MANAGED)}
        rows: list[PolicyAttachment] = []

        def attach(policy: Policy, **principal: Any) -> None:
            rows.append(PolicyAttachment(organization=organization, policy=policy, **principal))

        # The probe's 5 groups: 25 policies, the managed read-only ones among them.
        probe_policies = [managed[name] for name in PROBE_MANAGED]
        probe_policies += rng.sample(policies, 25 - len(probe_policies))
        for i, policy in enumerate(probe_policies):
            attach(policy, group=probe_groups[i % len(probe_groups)])
        for group in groups[len(probe_groups) :]:
            for policy in rng.sample(policies, min(POLICIES_PER_GROUP, len(policies))):
                attach(policy, group=group)
        for i, membership in enumerate(members):
            if i % 10 < 3:
                for policy in rng.sample(policies, 1 + i % 2):
                    attach(policy, membership=membership)
        for application in applications:
            attach(rng.choice(policies), application=application)
        self._bulk(PolicyAttachment, iter(rows), returning=False)
        return len(rows)

    def _api_keys(
        self,
        organization: Organization,
        count: int,
        owner: User,
        members: list[Membership],
        applications: list[Application],
    ) -> list[APIKey]:
        """Three keys in four are applications' (made by the owner), the rest users' own.
        Each secret is new and stored only as `api_key_create` stores it, then forgotten."""
        now = timezone.now()
        active = [m for m in members if m.status == Membership.Status.ACTIVE]

        def keys() -> Iterator[APIKey]:
            for i in range(count):
                expires = now + dt.timedelta(days=30 + i % 300) if i % 4 == 0 else None
                if i % 4 != 3 and applications:
                    bearer = {"bearer_application": applications[i % len(applications)]}
                    creator = owner.pk
                else:
                    membership = active[i % len(active)]
                    bearer = {"bearer_membership": membership}
                    creator = membership.user_id
                yield APIKey(
                    organization=organization,
                    access_key=new_access_key(),
                    secret_hash=token_digest(new_secret()),
                    description=f"scale key {i}",
                    expires_at=expires,
                    created_by_id=creator,
                    **bearer,
                )

        return self._bulk(APIKey, keys())

    def _billing(self, organization: Organization) -> None:
        BillingContact.objects.create(
            organization=organization,
            name="Scale Billing",
            email=f"billing@{self.domain}",
            company="Scale SAS",
            country="France",
        )
        first = timezone.localdate().replace(day=1)
        tag = str(organization.pk)[:8].upper()
        for months_ago in range(1, 25):
            end = first
            for _ in range(months_ago - 1):
                end = (end - dt.timedelta(days=1)).replace(day=1)
            period_end = end - dt.timedelta(days=1)
            period_start = period_end.replace(day=1)
            Invoice.objects.create(
                organization=organization,
                number=f"SC-{tag}-{period_start:%Y%m}",
                period_start=period_start,
                period_end=period_end,
                amount=Decimal(40_000 + (months_ago * 1379) % 9000) + Decimal("0.45"),
                status=Invoice.Status.OPEN if months_ago == 1 else Invoice.Status.PAID,
                issued_on=end,
                due_on=end + dt.timedelta(days=30),
            )

    # ------------------------------------------------------------------ the trail

    def _audit_trail(
        self,
        organization: Organization,
        count: int,
        *,
        owner: User,
        memberships: Sequence[Membership],
        groups: Sequence[Group],
        policies: Sequence[Policy],
        applications: Sequence[Application],
        resources: Sequence[Resource],
        keys: Sequence[APIKey],
    ) -> int:
        """`count` events chained exactly as `AuditEvent._seal` chains `record`'s: same
        fields, same hash inputs, sequence 1.. in time order, then the chain head."""
        rng = self.rng
        head = AuditChain.lock_head(organization.pk)
        if head.sequence:
            raise CommandError("The new organization's audit chain is not empty.")
        emails = {m.pk: m.user.email for m in memberships}
        kinds = [kind for kind in EVENT_MIX for _ in range(kind[3])]
        now = timezone.now()
        # The whole trail within the last 300 days (retention is 365), one step apart.
        step = dt.timedelta(days=300) / max(count, 1)
        start = now - dt.timedelta(days=300)
        sequence, prev_hash = 0, ""
        bulk = models.QuerySet(AuditEvent)  # bypasses the append-only guard, on purpose

        def user_actor(membership: Membership) -> dict[str, Any]:
            return {
                "actor_user_id": membership.user_id,
                "actor_type": AuditEvent.ActorType.USER,
                "actor_id": str(membership.user_id),
                "actor_label": emails[membership.pk][:254],
            }

        owner_actor = user_actor(memberships[0])

        def event(index: int) -> AuditEvent:
            nonlocal sequence, prev_hash
            if index == 0:
                action, actor = events.ORGANIZATION_CREATED, owner_actor
                target_fields = _target(organization)
                data: dict[str, Any] = {}
            else:
                action, actor_kind, target_kind, _ = kinds[rng.randrange(len(kinds))]
                member = memberships[rng.randrange(len(memberships))]
                actor = {
                    "user": user_actor(member),
                    "owner": owner_actor,
                    "none": {"actor_type": "", "actor_id": "", "actor_label": ""},
                }.get(actor_kind)
                data = {}
                if target_kind == "self":
                    target_fields = _target(member.user, emails[member.pk])
                elif target_kind == "permission":
                    target_fields = _label(rng.choice(PERMISSIONS))
                elif target_kind == "email":
                    target_fields = _label(emails[member.pk])
                elif target_kind == "policy":
                    target_fields = _target(rng.choice(policies))
                    data = {"principal": {"type": "user", "id": str(member.user_id)}}
                elif target_kind == "group":
                    target_fields = _target(rng.choice(groups))
                    data = {"member": emails[member.pk]}
                elif target_kind == "resource":
                    application = rng.choice(applications)
                    actor = {
                        "actor_type": AuditEvent.ActorType.APPLICATION,
                        "actor_id": str(application.pk),
                        "actor_label": application.name,
                    }
                    target_fields = _target(rng.choice(resources))
                    data = {"before": {"tags": {}}, "after": {"tags": {"env": "prod"}}}
                elif target_kind == "api_key" and keys:
                    key = rng.choice(keys)
                    target_fields = _target(key)
                    data = {"after": {"access_key": key.access_key, "description": "scale"}}
                else:
                    target_fields = _target(member, emails[member.pk])
                    data = {"before": {"full_name": ""}, "after": {"full_name": "x"}}
            fields: dict[str, Any] = {
                "organization_id": organization.pk,
                "occurred_at": start + step * index,
                "action": action.name,
                "result": action.result,
                "actor_type": "",
                "actor_id": "",
                "actor_label": "",
                **actor,
                **target_fields,
                "data": normal_data(redact(data)),
                "ip": IPS[rng.randrange(len(IPS))],
                "user_agent": USER_AGENTS[rng.randrange(len(USER_AGENTS))],
                "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "public_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "sequence": sequence + 1,
                "prev_hash": prev_hash,
            }
            fields["hash"] = content_hash({name: fields[name] for name in HASHED_FIELDS})
            sequence, prev_hash = fields["sequence"], fields["hash"]
            return AuditEvent(service=action.service, **fields)

        done = 0
        for batch in _batches((event(i) for i in range(count)), EVENT_BATCH):
            bulk.bulk_create(batch)
            done += len(batch)
            if done % 100_000 == 0 and done < count:
                self._step(f"  {done} audit events")
        head.sequence, head.last_hash = sequence, prev_hash
        head.save(update_fields=["sequence", "last_hash"])
        return done

    # ------------------------------------------------------------------ report

    def _print(self, organization: Organization) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS(f"Scale organization: {organization.name} ({organization.pk})"))
        write(f"  owner  {self.owner_email} / {OWNER_PASSWORD}")
        write(
            f"  probe  {self.probe_email} / {PROBE_PASSWORD}"
            f" (membership {self.probe_membership.pk}, 25 policies through"
            f" {PROBE_GROUPS} groups)"
        )


def _target(target: models.Model, label: str = "") -> dict[str, str]:
    """The target columns `record` fills from a model instance."""
    return {
        "target_type": target._meta.label_lower,
        "target_id": str(target.pk)[:64],
        "target_label": (label or str(target))[:254],
    }


def _label(label: str) -> dict[str, str]:
    return {"target_type": "", "target_id": "", "target_label": label[:254]}


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
