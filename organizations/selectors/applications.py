"""Reads of applications and their groups."""

from __future__ import annotations

from django.db.models import (
    Count,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, Lower

from organizations.models import APIKey, Application, Group, Organization
from organizations.selectors.organizations import in_organization

_GroupApplication = Group.applications.through


def _count(queryset: QuerySet, field: str) -> Subquery:
    return Subquery(
        queryset.filter(**{field: OuterRef("pk")}).values(field).annotate(n=Count("pk")).values("n")
    )


def applications_of(organization: Organization) -> QuerySet[Application]:
    """The organization's applications with their group and key counts (constant queries)."""
    return (
        Application.objects.filter(organization=organization)
        .annotate(
            group_count=Coalesce(_count(_GroupApplication.objects.all(), "application"), 0),
            key_count=Coalesce(_count(APIKey.objects.all(), "bearer_application"), 0),
        )
        .order_by(Lower("name"))
    )


def application_choices(organization: Organization) -> QuerySet[Application]:
    """Names and ids only, for pickers."""
    return (
        Application.objects.filter(organization=organization)
        .only("pk", "name")
        .order_by(Lower("name"))
    )


def application_for(*, organization: Organization, application_id: object) -> Application:
    return in_organization(Application, organization, application_id)


def groups_of_application(application: Application) -> QuerySet[Group]:
    return application.groups.order_by(Lower("name"))


def addable_groups(application: Application) -> QuerySet[Group]:
    """Groups of the application's organization it is not in, for the add-to-group picker."""
    return (
        Group.objects.filter(organization_id=application.organization_id)
        .exclude(applications=application)
        .order_by(Lower("name"))
    )
