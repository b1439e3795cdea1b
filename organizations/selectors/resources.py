"""Reads of the resources registered in projects (#14)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTransform

from organizations.models import Organization, Project, Resource
from organizations.selectors.organizations import in_organization
from organizations.tags import TAG_KEY


def resources_of(
    project: Project, *, type: str | None = None, search: str = ""
) -> QuerySet[Resource]:
    """The project's resources, of one type when given. `search` matches a name (any part,
    ignoring case) or a tag: `key=value` (that exact value) or `key` (the tag is set)."""
    resources = Resource.objects.filter(project=project)
    if type:
        resources = resources.filter(type=type)
    return searched(resources, search)


def searched(resources: QuerySet[Resource], search: str) -> QuerySet[Resource]:
    """`resources` matching `search`: a name (any part, ignoring case) or a tag, `key=value`
    (that exact value) or `key` (the tag is set); all of them for a blank search. The one
    matching of the resource lists and pickers."""
    search = search.strip()
    if not search:
        return resources
    if "\x00" in search:
        # No stored name or tag holds NUL, which PostgreSQL refuses in a query.
        return resources.none()
    matches = Q(name__icontains=search)
    key, has_value, value = search.partition("=")
    if TAG_KEY.match(key):
        if has_value:
            # KeyTransform, not `tags__<key>`: a key may hold `__` or other lookup names,
            # and JSON `contains` is not supported by SQLite.
            resources = resources.alias(_tag=KeyTransform(key, "tags"))
            matches |= Q(_tag=value)
        else:
            matches |= Q(tags__has_key=key)
    return resources.filter(matches)


def resource_for(*, organization: Organization, resource_id: object) -> Resource:
    """The organization's resource, else 404 (another organization's does not exist)."""
    return in_organization(Resource, organization, resource_id)


def type_counts(project: Project) -> dict[str, int]:
    """How many resources of each type the project holds (types it has none of absent)."""
    rows = Resource.objects.filter(project=project).values("type").annotate(count=Count("pk"))
    return {row["type"]: row["count"] for row in rows.order_by()}
