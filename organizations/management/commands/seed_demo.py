"""Idempotent demo data: one organization with an owner, tech, billing and read-only user,
and a user who may list instances in one project only (plus those of their team).

Run it as often as you like: what exists is kept, what is missing is created, and the
demo passwords are reset so the printed logins always work.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.mfa import operator_totp_setup
from accounts.models import User
from organizations.models import (
    Application,
    BillingContact,
    Group,
    Invitation,
    Invoice,
    Membership,
    Organization,
    Project,
    Resource,
)
from organizations.services import api_keys as api_key_services
from organizations.services import applications as application_services
from organizations.services import billing as billing_services
from organizations.services import groups as group_services
from organizations.services import invitations as invitation_services
from organizations.services import organizations as organization_services
from organizations.services import people as people_services
from organizations.services import projects as project_services
from organizations.services import resources as resource_services
from organizations.services.people import membership_set_tags
from policies.catalogue import AUTHORIZE_CHECK
from policies.models import Policy
from policies.services import guardrails as guardrail_services
from policies.services import policies as policy_services
from policies.services import rules as rule_services
from policies.services.attachments import policy_attach
from policies.services.policies import sync_managed_policies

ORGANIZATION = "Acme Cloud"
SECOND_ORGANIZATION = "Acme Labs"
# (email, password, full name, owner?, managed policies)
PEOPLE = [
    ("owner@acme.example", "demo-owner-2026", "Olivia Owner", True, []),
    ("tech@acme.example", "demo-tech-2026", "Theo Tech", False, ["TechAccess"]),
    ("billing@acme.example", "demo-billing-2026", "Bea Billing", False, ["BillingAccess"]),
    ("readonly@acme.example", "demo-readonly-2026", "Remy Reader", False, ["ReadOnlyAccess"]),
    # An IAM administrator who is not an owner: guardrails apply to them, and a change that
    # would take away their own IAM rights asks for confirmation.
    ("iam@acme.example", "demo-iam-2026", "Ivy Admin", False, ["IAMManager", "AuditReader"]),
]
OPERATOR = ("operator@acme.example", "demo-operator-2026", "Oscar Operator")
# An account created by the organization itself (a "member"), in the Developers group.
MEMBER = ("member@acme.example", "demo-member-2026", "Mia Member")
DEVELOPERS_POLICY = "developers-staging"
APPLICATION = "ci-deployer"
INVITEE = "new.hire@acme.example"
OPERATORS_POLICY = "web-frontend-operators"
AUTHORIZER_POLICY = "platform-authorizer"
# The demo is served on 127.0.0.1, which counts as "the office" so the rule shows as allowed.
OFFICE_NETWORK = 'ip_in_range(request.ip, "10.0.0.0/8") || ip_in_range(request.ip, "127.0.0.0/8")'
PROJECTS = [
    ("web-frontend", "Customer-facing web application and its CDN."),
    ("data-pipeline", "Nightly ETL jobs and the analytics warehouse."),
    ("staging", "Pre-production copies of every service."),
]
# project -> (type, name, tags): a few of each type, tagged so tag conditions and the
# resource search have something to match (team=web / team=data, env=prod / env=staging).
_WEB_PROD = {"team": "web", "env": "prod"}
_DATA_PROD = {"team": "data", "env": "prod"}
_WEB_STAGING = {"team": "web", "env": "staging"}
_DATA_STAGING = {"team": "data", "env": "staging"}
RESOURCES = {
    "web-frontend": [
        ("compute:instances", "web-1", _WEB_PROD),
        ("compute:instances", "web-2", _WEB_PROD),
        ("storage:buckets", "web-assets", _WEB_PROD),
        ("dns:zones", "acme.example", _WEB_PROD),
    ],
    "data-pipeline": [
        ("compute:instances", "etl-worker-1", _DATA_PROD),
        ("storage:buckets", "warehouse-raw", _DATA_PROD),
        ("dns:zones", "data.acme.example", _DATA_PROD),
    ],
    "staging": [
        ("compute:instances", "web-staging-1", _WEB_STAGING),
        ("compute:instances", "etl-staging-1", _DATA_STAGING),
        ("storage:buckets", "staging-uploads", _WEB_STAGING),
        ("dns:zones", "staging.acme.example", _WEB_STAGING),
    ],
}


# Scaleway's "list instances in Project A only", then tags (ABAC): a user who may list and
# read the instances of the first project only, and act on any instance of their team's
# (resource.tags["team"] == principal.tags["team"]), but never delete PROTECTED_INSTANCE.
SCOPED = ("scoped@acme.example", "demo-scoped-2026", "Sam Scoped")
SCOPED_TEAM = "web"
PROJECT_A = PROJECTS[0][0]
PROJECT_A_POLICY = f"Instances in {PROJECT_A} only"
TEAM_POLICY = "Team instances"
TEAM_CONDITION = 'resource.tags["team"] == principal.tags["team"]'
PROTECTED_INSTANCE = "web-1"


class Command(BaseCommand):
    help = "Create or refresh the demo organization, its people, projects and invoices."

    def handle(self, *args: Any, **options: Any) -> None:
        organization = self._seed()
        # After the commit, so the logins come after the emails it sends.
        self._print_logins(organization)

    @transaction.atomic
    def _seed(self) -> Organization:
        sync_managed_policies()
        users = {email: self._user(email, pw, name) for email, pw, name, *_ in PEOPLE}
        owner = users[PEOPLE[0][0]]
        organization = self._organization(ORGANIZATION, owner)
        for email, _pw, _name, is_owner, policy_names in PEOPLE[1:]:
            membership, _ = Membership.objects.get_or_create(
                organization=organization, user=users[email], defaults={"is_owner": is_owner}
            )
            for policy_name in policy_names:
                policy = Policy.objects.get(kind=Policy.Kind.MANAGED, name=policy_name)
                if not membership.policy_attachments.filter(policy=policy).exists():
                    policy_attach(policy=policy, principal=membership, actor=owner)
        for name, description in PROJECTS:
            if not Project.objects.filter(organization=organization, name=name).exists():
                project_services.project_create(
                    organization=organization, name=name, description=description, actor=owner
                )
        self._resources(organization, owner)
        if not BillingContact.objects.filter(organization=organization).exists():
            billing_services.billing_contact_update(
                organization=organization,
                values={
                    "name": "Bea Billing",
                    "email": "billing@acme.example",
                    "company": "Acme Cloud SAS",
                    "address": "12 rue de la Paix\n75002 Paris",
                    "country": "France",
                    "vat_number": "FR40123456789",
                },
                actor=users["billing@acme.example"],
            )
        self._invoices(organization)
        self._custom_policies(organization, owner, users["readonly@acme.example"])
        self._principals(organization, owner, users)
        self._scoped_user(organization, owner)
        self._organization(SECOND_ORGANIZATION, owner)
        operator = self._user(*OPERATOR)
        if not operator.is_staff:
            operator.is_staff = operator.is_superuser = True
            operator.save(update_fields=["is_staff", "is_superuser"])
        # /admin/ needs an OTP-verified staff account: the operator gets an authenticator.
        self.operator_secret, self.operator_url = operator_totp_setup(user=operator)
        return organization

    def _user(self, email: str, password: str, full_name: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
        else:
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
        return user

    def _organization(self, name: str, owner: User) -> Organization:
        existing = Organization.objects.filter(name=name, memberships__user=owner).first()
        return existing or organization_services.organization_create(name=name, owner=owner)

    def _resources(self, organization: Organization, owner: User) -> None:
        for project_name, resources in RESOURCES.items():
            project = Project.objects.get(organization=organization, name=project_name)
            for type, name, tags in resources:
                if not Resource.objects.filter(project=project, type=type, name=name).exists():
                    resource_services.resource_create(
                        project=project, type=type, name=name, tags=tags, actor=owner
                    )

    def _custom_policies(self, organization: Organization, owner: User, reader: User) -> None:
        """A project-scoped, conditional policy and a guardrail, so the editor, the
        simulator and effective permissions all have something to show."""
        if not Policy.objects.filter(organization=organization, name=OPERATORS_POLICY).exists():
            policy = policy_services.policy_create(
                organization=organization,
                name=OPERATORS_POLICY,
                description="Run the web front end's instances, from the office network only.",
                labels=["web", "on-call"],
                actor=owner,
            )
            rule_services.rule_add(
                policy=policy,
                effect="allow",
                actions=["InstancesFullAccess"],
                scope="projects",
                projects=list(organization.projects.filter(name="web-frontend")),
                condition=OFFICE_NETWORK,
                actor=owner,
            )
            membership = Membership.objects.get(organization=organization, user=reader)
            policy_attach(policy=policy, principal=membership, actor=owner)
        if not Policy.objects.filter(organization=organization, kind="guardrail").exists():
            guardrail_services.guardrail_rule_add(
                organization=organization,
                effect="deny",
                actions=["projects:projects:delete"],
                scope="all_projects",
                condition=f"!({OFFICE_NETWORK})",
                actor=owner,
            )

    def _scoped_user(self, organization: Organization, owner: User) -> None:
        """The "instances in Project A only" user, tagged with a team, with the project's
        policy and the team's (tag condition, and a deny on one chosen resource)."""
        user = self._user(*SCOPED)
        membership, _ = Membership.objects.get_or_create(organization=organization, user=user)
        owner_membership = Membership.objects.get(organization=organization, user=owner)
        membership_set_tags(
            membership=membership,
            tags={**membership.tags, "team": SCOPED_TEAM},
            actor=owner_membership,
        )
        project_a = Project.objects.get(organization=organization, name=PROJECT_A)
        policy = Policy.objects.filter(organization=organization, name=PROJECT_A_POLICY).first()
        if policy is None:
            policy = policy_services.policy_create(
                organization=organization,
                name=PROJECT_A_POLICY,
                description=f"List and read the instances of {PROJECT_A}, and nothing else.",
                labels=["demo"],
                actor=owner,
            )
            rule_services.rule_add(
                policy=policy,
                effect="allow",
                actions=[
                    "compute:instances:list",
                    "compute:instances:read",
                    "projects:projects:read",
                ],
                scope="projects",
                projects=[project_a],
                actor=owner,
            )
            # To find the project in the console: the list shows only the readable ones.
            rule_services.rule_add(
                policy=policy,
                effect="allow",
                actions=["projects:projects:list"],
                scope="organization",
                actor=owner,
            )
        if not membership.policy_attachments.filter(policy=policy).exists():
            policy_attach(policy=policy, principal=membership, actor=owner)
        policy = Policy.objects.filter(organization=organization, name=TEAM_POLICY).first()
        if policy is None:
            policy = policy_services.policy_create(
                organization=organization,
                name=TEAM_POLICY,
                description="Act on any instance tagged with your own team; "
                f"never delete {PROTECTED_INSTANCE}.",
                labels=["demo", "abac"],
                actor=owner,
            )
            rule_services.rule_add(
                policy=policy,
                effect="allow",
                actions=["compute:instances:*"],
                scope="all_projects",
                condition=TEAM_CONDITION,
                actor=owner,
            )
            rule_services.rule_add(
                policy=policy,
                effect="deny",
                actions=["compute:instances:delete"],
                scope="resources",
                resources=[
                    Resource.objects.get(
                        project=project_a, type="compute:instances", name=PROTECTED_INSTANCE
                    )
                ],
                actor=owner,
            )
        if not membership.policy_attachments.filter(policy=policy).exists():
            policy_attach(policy=policy, principal=membership, actor=owner)

    def _principals(self, organization: Organization, owner: User, users: dict[str, User]) -> None:
        """Groups with policies, a member account, an application with an API key, a key
        expiring soon and a pending invitation: every IAM page has something to show."""
        owner_membership = Membership.objects.get(organization=organization, user=owner)
        member = User.objects.filter(email=MEMBER[0]).first()
        if member is None:
            created = people_services.member_create(
                organization=organization, actor=owner, email=MEMBER[0], full_name=MEMBER[2]
            )
            member = created.membership.user
        member.set_password(MEMBER[1])
        member.save(update_fields=["password"])
        developers = Group.objects.filter(organization=organization, name="Developers").first()
        if developers is None:
            developers = group_services.group_create(
                organization=organization,
                actor=owner,
                name="Developers",
                description="Build and run everything in staging.",
            )
            policy = policy_services.policy_create(
                organization=organization,
                name=DEVELOPERS_POLICY,
                description="Full access to the staging project's resources.",
                labels=["dev"],
                actor=owner,
            )
            rule_services.rule_add(
                policy=policy,
                effect="allow",
                actions=["InstancesFullAccess", "projects:projects:read"],
                scope="projects",
                projects=list(organization.projects.filter(name="staging")),
                actor=owner,
            )
            policy_attach(policy=policy, principal=developers, actor=owner)
            for email in ("tech@acme.example", MEMBER[0]):
                group_services.group_add_member(
                    group=developers,
                    membership=Membership.objects.get(organization=organization, user__email=email),
                    actor=owner,
                )
        if not Group.objects.filter(organization=organization, name="Finance").exists():
            finance = group_services.group_create(
                organization=organization,
                actor=owner,
                name="Finance",
                description="Invoices and the billing contact.",
            )
            policy_attach(
                policy=Policy.objects.get(kind=Policy.Kind.MANAGED, name="BillingAccess"),
                principal=finance,
                actor=owner,
            )
            group_services.group_add_member(
                group=finance,
                membership=Membership.objects.get(
                    organization=organization, user=users["billing@acme.example"]
                ),
                actor=owner,
            )
        if not Application.objects.filter(organization=organization, name=APPLICATION).exists():
            application = application_services.application_create(
                organization=organization,
                name=APPLICATION,
                description="Deploys staging from CI.",
                actor=owner,
            )
            group_services.group_add_application(
                group=developers, application=application, actor=owner
            )
            key = api_key_services.api_key_create(
                organization=organization,
                creator=owner_membership,
                bearer=application,
                description="CI pipeline",
            )
            token = api_key_services.api_key_token(
                access_key=key.api_key.access_key, secret=key.secret
            )
            tech_id = users["tech@acme.example"].pk
            self.stdout.write(f"API key token for {APPLICATION} (shown once): {token}")
            self.stdout.write(
                "  try it: curl -s -X POST http://127.0.0.1:8000/api/v1/authorize "
                f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
                f"""-d '{{"questions": [{{"principal": {{"type": "user", "id": "{tech_id}"}}, """
                """"action": "projects:projects:create"}]}'"""
            )
            tech = Membership.objects.get(
                organization=organization, user__email="tech@acme.example"
            )
            api_key_services.api_key_create(
                organization=organization,
                creator=tech,
                bearer=tech,
                description="Laptop scripts",
                expires_on=timezone.localdate() + datetime.timedelta(days=5),
            )
        self._authorizer(organization, owner)
        if not Invitation.objects.filter(organization=organization, email=INVITEE).exists():
            invitation_services.invitations_create(
                organization=organization,
                actor=owner_membership,
                emails=[INVITEE],
                role=Invitation.Role.READ_ONLY,
            )

    def _authorizer(self, organization: Organization, owner: User) -> None:
        """ci-deployer may call `POST /api/v1/authorize`: `iam:authorize:check` is granted
        only by name, through this custom policy (kept, or made again, on every run)."""
        application = Application.objects.get(organization=organization, name=APPLICATION)
        policy = Policy.objects.filter(organization=organization, name=AUTHORIZER_POLICY).first()
        if policy is None:
            policy = policy_services.policy_create(
                organization=organization,
                name=AUTHORIZER_POLICY,
                description="Ask the policy evaluator about the organization's principals "
                "(POST /api/v1/authorize).",
                labels=["api"],
                actor=owner,
            )
            rule_services.rule_add(
                policy=policy,
                effect="allow",
                actions=[AUTHORIZE_CHECK],
                scope="organization",
                actor=owner,
            )
        if not application.policy_attachments.filter(policy=policy).exists():
            policy_attach(policy=policy, principal=application, actor=owner)

    def _invoices(self, organization: Organization) -> None:
        today = timezone.localdate()
        first_of_month = today.replace(day=1)
        for months_ago in range(1, 13):
            end = first_of_month
            for _ in range(months_ago - 1):
                end = (end - datetime.timedelta(days=1)).replace(day=1)
            period_end = end - datetime.timedelta(days=1)
            period_start = period_end.replace(day=1)
            number = f"ACME-{period_start:%Y%m}"
            status = Invoice.Status.OPEN if months_ago == 1 else Invoice.Status.PAID
            amount = Decimal(1180 + (months_ago * 137) % 600) + Decimal("0.45")
            Invoice.objects.get_or_create(
                number=number,
                defaults={
                    "organization": organization,
                    "period_start": period_start,
                    "period_end": period_end,
                    "amount": amount,
                    "currency": Invoice.Currency.EUR,
                    "status": status,
                    "issued_on": end,
                    "due_on": end + datetime.timedelta(days=30),
                },
            )

    def _print_logins(self, organization: Organization) -> None:
        write = self.stdout.write
        write(self.style.SUCCESS(f"Demo organization: {organization.name} ({organization.pk})"))
        write("Demo logins (email / password):")
        for email, password, _name, is_owner, policies in PEOPLE:
            role = "owner" if is_owner else ", ".join(policies)
            write(f"  {email:<24} {password:<20} {role}")
        write(f"  {MEMBER[0]:<24} {MEMBER[1]:<20} member account, group Developers")
        write(
            f"  {SCOPED[0]:<24} {SCOPED[1]:<20} instances in {PROJECT_A} only, team={SCOPED_TEAM}:"
            f" try Projects > {PROJECT_A} > Instances (allowed), then {PROJECTS[1][0]}'s"
            " (denied); simulate it on web-staging-1 (allowed by tag) and etl-staging-1"
        )
        write(f"  {OPERATOR[0]:<24} {OPERATOR[1]:<20} operator (/admin/, needs a TOTP code)")
        write(f"Operator's authenticator secret: {self.operator_secret}")
        write(f"  (add it to an authenticator app, or: {self.operator_url})")
