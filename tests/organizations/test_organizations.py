from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Membership, Organization
from organizations.selectors.organizations import FEW_MEMBERSHIPS
from organizations.services import organizations as organization_services
from tests.conftest import Org, assert_access
from tests.factories import AuditEventFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_dashboard_shows_counts_and_recent_activity(owner_client: Client, org: Org) -> None:
    AuditEventFactory(organization=org.organization, action="projects.project.created")
    response = owner_client.get(reverse("organizations:dashboard", args=[org.organization.pk]))
    assert response.status_code == 200
    assert response.context["counts"] == {"members": 4, "owners": 1, "projects": 1}
    # The project's creation and the owner's own sign-in (accounts.trail).
    assert [e.action for e in response.context["events"]] == [
        "projects.project.created",
        "auth.login.succeeded",
    ]


def test_dashboard_of_another_organization_is_not_found(org: Org) -> None:
    assert_access(
        org,
        "get",
        reverse("organizations:dashboard", args=[org.organization.pk]),
        {"owner": 200, "tech": 200, "billing": 200, "readonly": 200, "outsider": 404},
    )


def test_unknown_organization_is_not_found(owner_client: Client) -> None:
    response = owner_client.get("/o/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert "This page does not exist" in response.content.decode()


def test_a_suspended_member_is_refused(org: Org) -> None:
    org.tech.status = Membership.Status.SUSPENDED
    org.tech.save()
    response = org.client_for("tech").get(
        reverse("organizations:project_list", args=[org.organization.pk])
    )
    assert response.status_code == 403


def test_home_goes_to_the_last_used_organization(org: Org) -> None:
    other = MembershipFactory(user=org.owner.user, is_owner=True).organization
    client = org.client_for("owner")
    client.get(reverse("organizations:dashboard", args=[other.pk]))
    response = client.get(reverse("organizations:home"))
    assert response["Location"] == reverse("organizations:dashboard", args=[other.pk])


def test_home_without_organization_offers_to_create_one(client: Client) -> None:
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    response = client.get(reverse("organizations:home"), follow=True)
    assert "Create an organization" in response.content.decode()


def test_create_another_organization(owner_client: Client, org: Org) -> None:
    response = owner_client.post(reverse("organizations:list"), {"name": "Second"})
    created = Organization.objects.get(name="Second")
    assert response["Location"] == reverse("organizations:dashboard", args=[created.pk])
    assert created.memberships.get().user == org.owner.user
    assert created.projects.get().is_default


def test_create_organization_needs_a_name(owner_client: Client) -> None:
    response = owner_client.post(reverse("organizations:list"), {"name": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_switcher_redirects_plain_and_with_htmx(owner_client: Client, org: Org) -> None:
    url = reverse("organizations:switch")
    target = reverse("organizations:dashboard", args=[org.organization.pk])
    assert owner_client.get(url, {"org": org.organization.pk})["Location"] == target
    htmx = owner_client.get(url, {"org": org.organization.pk}, headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == target
    assert owner_client.get(url, {"org": "junk"}).status_code == 302


def test_switcher_lists_only_my_organizations(owner_client: Client, org: Org) -> None:
    stranger = MembershipFactory(is_owner=True).organization
    page = owner_client.get(reverse("organizations:dashboard", args=[org.organization.pk]))
    body = page.content.decode()
    assert org.organization.name in body
    assert stranger.name not in body


@pytest.mark.parametrize("others", [2, FEW_MEMBERSHIPS + 5])
def test_switcher_lists_every_organization_of_few_or_many(
    owner_client: Client, org: Org, others: int, django_assert_max_num_queries
) -> None:
    """Few memberships come with the guard's one read; many take two more (the
    membership alone, then the switcher's query)."""
    user = org.owner.user
    names = [MembershipFactory(user=user).organization.name for _ in range(others)]
    url = reverse("organizations:dashboard", args=[org.organization.pk])
    owner_client.get(url)
    with django_assert_max_num_queries(20) as queries:
        body = owner_client.get(url).content.decode()
    assert all(name in body for name in [org.organization.name, *names])
    assert f'<option value="{org.organization.pk}" selected>' in body
    reads = [q for q in queries.captured_queries if 'FROM "organizations_membership"' in q["sql"]]
    user_reads = [q for q in reads if user.pk.hex in q["sql"].replace("-", "")]
    assert len(user_reads) == (1 if others < FEW_MEMBERSHIPS else 3)


def test_rename_organization(org: Org) -> None:
    url = reverse("organizations:settings", args=[org.organization.pk])
    assert_access(
        org,
        "post",
        url,
        {"tech": 403, "billing": 403, "readonly": 403, "outsider": 404},
        name="Hacked",
    )
    response = org.client_for("owner").post(url, {"name": "Acme Renamed"})
    assert response.status_code == 302
    org.organization.refresh_from_db()
    assert org.organization.name == "Acme Renamed"
    assert AuditEvent.objects.filter(action="organization.organization.updated").exists()


def test_users_list_shows_members(org: Org, django_assert_max_num_queries) -> None:
    client = org.client_for("readonly")
    url = reverse("organizations:user_list", args=[org.organization.pk])
    client.get(url)  # compiles and caches the reader's rules
    with django_assert_max_num_queries(14) as small:
        client.get(url)
    MembershipFactory.create_batch(60, organization=org.organization)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert org.owner.user.email in response.content.decode()
    assert_access(org, "get", url, {"tech": 200, "billing": 403, "outsider": 404})


def test_audit_trail_lists_events_with_constant_queries(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    url = reverse("audit:event_list", args=[org.organization.pk])
    AuditEventFactory.create_batch(2, organization=org.organization)
    with django_assert_max_num_queries(12) as small:
        client.get(url)
    AuditEventFactory.create_batch(200, organization=org.organization, target_label="web-42")
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert "web-42" in response.content.decode()
    AuditEventFactory(target_label="foreign-event")  # another organization's
    assert "foreign-event" not in client.get(url).content.decode()
    assert_access(org, "get", url, {"tech": 403, "readonly": 403, "outsider": 404})


# Each breaks an email header, or makes the name display as another one.
UNSAFE_NAMES = [
    "Acme\nEvil",
    "Acme\r\nBcc: victim@example.com",
    "Tab\there",
    "Nul\x00byte",
    "Acme \u202eevil",  # right-to-left override
    "Zero\u200bwidth",
    "Line\u2028separator",
]
UNSAFE_MESSAGE = "Use a name on one line without control or invisible characters"


@pytest.mark.parametrize("name", [*UNSAFE_NAMES, "A" * 101])
def test_the_services_refuse_unsafe_and_over_long_names(org: Org, name: str) -> None:
    count = Organization.objects.count()
    # organization_create is also how signing up creates the organization.
    with pytest.raises(ValidationError):
        organization_services.organization_create(name=name, owner=UserFactory())
    with pytest.raises(ValidationError):
        organization_services.organization_rename(
            organization=org.organization, name=name, actor=org.owner.user
        )
    assert Organization.objects.count() == count
    org.organization.refresh_from_db()
    assert org.organization.name == "Acme"


@pytest.mark.parametrize("name", [n for n in UNSAFE_NAMES if "\x00" not in n])
def test_renaming_to_a_name_with_control_characters_is_refused_with_a_message(
    org: Org, name: str
) -> None:
    url = reverse("organizations:settings", args=[org.organization.pk])
    response = org.client_for("owner").post(url, {"name": name})
    assert UNSAFE_MESSAGE in response.content.decode()
    org.organization.refresh_from_db()
    assert org.organization.name == "Acme"
    assert not AuditEvent.objects.filter(action="organization.organization.updated").exists()


def test_creating_an_organization_with_a_newline_is_refused(owner_client: Client) -> None:
    response = owner_client.post(reverse("organizations:list"), {"name": "Second\nLine"})
    assert response.status_code == 400
    assert f"{UNSAFE_MESSAGE} (found U+000A)." in response.content.decode()
    assert not Organization.objects.filter(name__startswith="Second").exists()


def test_the_admin_form_checks_names_as_the_services_do(org: Org) -> None:
    request = RequestFactory().get("/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    form_class = admin.site._registry[Organization].get_form(request, org.organization)
    form = form_class(
        {"name": "Acme\u202eevil", "audit_retention_days": 30}, instance=org.organization
    )
    assert not form.is_valid()
    assert UNSAFE_MESSAGE in form.errors["name"][0]
