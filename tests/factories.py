"""The one factory module for tests."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from accounts.models import User
from accounts.tokens import token_digest
from audit.models import AuditEvent
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
from policies.models import Policy, PolicyAttachment, PolicyVersion, Rule

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Organization {n}")

    @factory.post_generation
    def default_project(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            Project.objects.create(organization=self, name="default", is_default=True)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    is_owner = False


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"project-{n}")
    description = factory.Faker("sentence")


class ResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resource

    project = factory.SubFactory(ProjectFactory)
    organization = factory.SelfAttribute("project.organization")
    type = "compute:instances"
    name = factory.Sequence(lambda n: f"resource-{n}")
    tags = factory.LazyFunction(dict)


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    organization = factory.SubFactory(OrganizationFactory)
    number = factory.Sequence(lambda n: f"INV-{n:06d}")
    period_start = datetime.date(2026, 9, 1)
    period_end = datetime.date(2026, 9, 30)
    amount = Decimal("1234.56")
    currency = Invoice.Currency.EUR
    status = Invoice.Status.OPEN
    issued_on = datetime.date(2026, 10, 1)
    due_on = datetime.date(2026, 10, 31)


class BillingContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingContact

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Faker("name")
    email = factory.Faker("email")
    company = factory.Faker("company")


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"group-{n}")


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"application-{n}")


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Policy

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"policy-{n}")


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule

    policy = factory.SubFactory(PolicyFactory)
    position = factory.Sequence(lambda n: n + 1)
    effect = Rule.Effect.ALLOW
    actions = factory.LazyFunction(lambda: ["projects:projects:list"])
    scope = Rule.Scope.ORGANIZATION


class PolicyVersionFactory(factory.django.DjangoModelFactory):
    """A recorded version, as `policy_version_record` makes them (numbers given in order)."""

    class Meta:
        model = PolicyVersion

    policy = factory.SubFactory(PolicyFactory)
    number = factory.Sequence(lambda n: n + 1)
    name = factory.SelfAttribute("policy.name")
    change = "rule 1 edited"
    rules = factory.LazyFunction(list)


class PolicyAttachmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PolicyAttachment

    policy = factory.SubFactory(PolicyFactory)
    membership = factory.SubFactory(MembershipFactory)
    organization = factory.SelfAttribute("membership.organization")


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    organization = factory.SubFactory(OrganizationFactory)
    occurred_at = factory.LazyFunction(timezone.now)
    action = "projects.project.created"
    actor_label = "someone@example.com"
    target_label = "web"


# --- applications and API keys
API_KEY_SECRET = "factory-secret-not-for-production"


class APIKeyFactory(factory.django.DjangoModelFactory):
    """A key of an application; its secret is API_KEY_SECRET."""

    class Meta:
        model = APIKey

    bearer_application = factory.SubFactory(ApplicationFactory)
    organization = factory.SelfAttribute("bearer_application.organization")
    access_key = factory.Sequence(lambda n: f"IAMKTEST{n:012d}")
    secret_hash = token_digest(API_KEY_SECRET)
    description = factory.Sequence(lambda n: f"key {n}")


def grant(
    membership: Membership,
    *,
    projects: Iterable[Project] = (),
    resources: Iterable[Resource] = (),
    **rule: Any,
) -> Policy:
    """Attach to `membership` a new custom policy holding one rule (`RuleFactory` fields);
    with `projects` (or `resources`), the rule is scoped to those chosen projects (or
    resources)."""
    resources = list(resources)
    default = Rule.Scope.RESOURCES if resources else Rule.Scope.ORGANIZATION
    rule.setdefault("scope", Rule.Scope.PROJECTS if projects else default)
    policy = PolicyFactory(organization=membership.organization)
    created = RuleFactory(policy=policy, position=1, **rule)
    created.projects.set(projects)
    created.resources.set(resources)
    PolicyAttachmentFactory(policy=policy, membership=membership)
    return policy
