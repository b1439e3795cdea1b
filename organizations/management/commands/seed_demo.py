"""Idempotent demo data: one organization with an owner, tech, billing and read-only user.

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

from accounts.models import User
from organizations import services
from organizations.models import BillingContact, Invoice, Membership, Organization, Project
from policies import services as policy_services
from policies.models import Policy
from policies.services import policy_attach, sync_managed_policies

ORGANIZATION = "Acme Cloud"
SECOND_ORGANIZATION = "Acme Labs"
# (email, password, full name, owner?, managed policies)
PEOPLE = [
    ("owner@acme.example", "demo-owner-2026", "Olivia Owner", True, []),
    ("tech@acme.example", "demo-tech-2026", "Theo Tech", False, ["TechAccess"]),
    ("billing@acme.example", "demo-billing-2026", "Bea Billing", False, ["BillingAccess"]),
    ("readonly@acme.example", "demo-readonly-2026", "Remy Reader", False, ["ReadOnlyAccess"]),
]
OPERATOR = ("operator@acme.example", "demo-operator-2026", "Oscar Operator")
OPERATORS_POLICY = "web-frontend-operators"
# The demo is served on 127.0.0.1, which counts as "the office" so the rule shows as allowed.
OFFICE_NETWORK = 'ip_in_range(request.ip, "10.0.0.0/8") || ip_in_range(request.ip, "127.0.0.0/8")'
PROJECTS = [
    ("web-frontend", "Customer-facing web application and its CDN."),
    ("data-pipeline", "Nightly ETL jobs and the analytics warehouse."),
    ("staging", "Pre-production copies of every service."),
]


class Command(BaseCommand):
    help = "Create or refresh the demo organization, its people, projects and invoices."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
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
                    policy_attach(policy=policy, membership=membership, actor=owner)
        for name, description in PROJECTS:
            if not Project.objects.filter(organization=organization, name=name).exists():
                services.project_create(
                    organization=organization, name=name, description=description, actor=owner
                )
        if not BillingContact.objects.filter(organization=organization).exists():
            services.billing_contact_update(
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
        self._organization(SECOND_ORGANIZATION, owner)
        operator = self._user(*OPERATOR)
        if not operator.is_staff:
            operator.is_staff = operator.is_superuser = True
            operator.save(update_fields=["is_staff", "is_superuser"])
        self._print_logins(organization)

    def _user(self, email: str, password: str, full_name: str) -> User:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
        else:
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
        return user

    def _organization(self, name: str, owner: User) -> Organization:
        existing = Organization.objects.filter(name=name, memberships__user=owner).first()
        return existing or services.organization_create(name=name, owner=owner)

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
            policy_services.rule_add(
                policy=policy,
                effect="allow",
                actions=["InstancesFullAccess"],
                scope="projects",
                projects=list(organization.projects.filter(name="web-frontend")),
                condition=OFFICE_NETWORK,
                actor=owner,
            )
            membership = Membership.objects.get(organization=organization, user=reader)
            policy_attach(policy=policy, membership=membership, actor=owner)
        if not Policy.objects.filter(organization=organization, kind="guardrail").exists():
            policy_services.guardrail_rule_add(
                organization=organization,
                effect="deny",
                actions=["projects:projects:delete"],
                scope="all_projects",
                condition=f"!({OFFICE_NETWORK})",
                actor=owner,
            )

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
        write(f"  {OPERATOR[0]:<24} {OPERATOR[1]:<20} operator (/admin/)")
