"""The pages `bench_scale.py` drives: every main page of the console, with the ids of a
seeded organization filled in (issue #15, item 2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count
from django.utils import timezone

from organizations.models import Application, Group, Membership, Organization, Project
from policies.models import Policy

BASELINE = "bare signed-in (/accounts/)"


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    # HTMX requests name the element they swap: the view answers with that part only.
    hx_target: str = ""
    html: bool = True  # the export is CSV: outside the HTML size budget

    @property
    def headers(self) -> dict[str, str]:
        if not self.hx_target:
            return {}
        return {"HX-Request": "true", "HX-Target": self.hx_target}


def pages_for(organization: Organization, probe: Membership) -> list[Page]:
    """The pages, on typical rows of the organization: a member in 5 groups, a group of
    ~100 members, a policy attached to groups, the first custom project."""
    o = f"/o/{organization.pk}"
    member = (
        Membership.objects.filter(organization=organization, is_owner=False, status="active")
        .exclude(pk=probe.pk)
        .order_by("user__email")
        .first()
    )
    group = (
        Group.objects.filter(organization=organization)
        .annotate(n=Count("members"))
        .order_by("-n", "name")
        .first()
    )
    policy = (
        Policy.objects.filter(organization=organization, attachments__group__isnull=False)
        .order_by("name")
        .first()
    )
    project = Project.objects.filter(organization=organization, is_default=False).first()
    project = project or Project.objects.filter(organization=organization).first()
    application = Application.objects.filter(organization=organization).order_by("name").first()
    assert member and group and policy and project and application, "seed_scale first"
    now = timezone.now()
    period = urlencode(
        {
            "since": (now - dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M"),
            "until": (now - dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
        }
    )
    decision = urlencode(
        {
            "principal": f"user:{member.pk}",
            "action": "compute:instances:create",
            "project": str(project.pk),
            "ip": "10.1.2.3",
            "user_agent": "corp-cli/2.1",
        }
    )
    pages = [
        Page(BASELINE, "/accounts/"),
        Page("dashboard", f"{o}/"),
        Page("users", f"{o}/iam/users/"),
        Page("users search", f"{o}/iam/users/?q=user0042"),
        Page("users search (htmx)", f"{o}/iam/users/?q=user0042", "user-results"),
        Page("users kind=member", f"{o}/iam/users/?kind=member"),
        Page("users status=suspended", f"{o}/iam/users/?status=suspended"),
        Page("users group=", f"{o}/iam/users/?group={group.pk}"),
        Page("users mfa=no (htmx)", f"{o}/iam/users/?mfa=no", "user-results"),
        Page("user page", f"{o}/iam/users/{member.pk}/"),
        Page("effective permissions", f"{o}/iam/users/{member.pk}/permissions/"),
        Page("groups", f"{o}/iam/groups/"),
        Page("group page", f"{o}/iam/groups/{group.pk}/"),
        Page("policies", f"{o}/iam/policies/"),
        Page("policy page", f"{o}/iam/policies/{policy.pk}/"),
        Page("simulator", f"{o}/iam/simulator/"),
        Page("simulator decision", f"{o}/iam/simulator/?{decision}"),
        Page("applications", f"{o}/iam/applications/"),
        Page("application page", f"{o}/iam/applications/{application.pk}/"),
        Page("API keys", f"{o}/iam/api-keys/"),
        Page("projects", f"{o}/projects/"),
        Page("invoices", f"{o}/billing/"),
        Page("audit", f"{o}/audit/"),
    ]
    audit_filters = [
        ("action", urlencode({"action": "iam.policy.attached"})),
        ("service", urlencode({"action": "iam.*"})),
        ("principal", urlencode({"principal": f"user:{member.user_id}"})),
        ("target", urlencode({"target": str(policy.pk)})),
        ("target_type", urlencode({"target_type": "policies.policy"})),
        ("result", urlencode({"result": "denied"})),
        ("period", period),
    ]
    for name, query in audit_filters:
        pages.append(Page(f"audit {name}", f"{o}/audit/?{query}"))
        pages.append(Page(f"audit {name} (htmx)", f"{o}/audit/?{query}", "audit-results"))
    principal = urlencode({"principal": f"user:{member.user_id}"})
    pages.append(Page("audit export csv", f"{o}/audit/export.csv?{principal}", html=False))
    return pages
