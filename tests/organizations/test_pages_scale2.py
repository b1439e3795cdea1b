"""The group, application and user pages at scale (issue #15): their rows are written in
Python with the permission asked and the URLs reversed once per page, the group's rename
form is written by hand, and the navigation's links come from one object per request.
The markup stays what the templates wrote: links and forms per row, escaping, queries
flat as rows grow."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory
from django.urls import reverse, set_script_prefix

from iamportal.context_processors import NAV_LINKS, Navigation
from iamportal.fragments import link
from organizations.forms.groups import GroupForm
from organizations.models import Application, Group, Membership
from organizations.views.groups import _group_form_html
from tests.conftest import Org
from tests.factories import ApplicationFactory, GroupFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

NASTY = '<b>"x"&y</b>'


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def _forms(body: str, action: str) -> list[str]:
    """The hidden inputs of the POST forms to `action` (HTMX and plain)."""
    found = re.findall(
        r'<form method="post" action="' + re.escape(action) + r'"\s+hx-post="'
        r"" + re.escape(action) + r'"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"'
        r' value="[^"]+">\s*(<input type="hidden" name="[a-z_]+" value="[^"]*">)?',
        body,
    )
    return found


def _squash(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", str(html))).strip()


# --- the group page


def _big_group(org: Org, members: int, applications: int = 0) -> Group:
    group = GroupFactory(organization=org.organization, name="big")
    group.members.add(*MembershipFactory.create_batch(members, organization=org.organization))
    group.applications.add(
        *ApplicationFactory.create_batch(applications, organization=org.organization)
    )
    return group


def test_the_group_page_links_each_member_and_gives_each_a_remove_form(org: Org) -> None:
    group = _big_group(org, 3, applications=2)
    nasty = MembershipFactory(
        organization=org.organization, user=UserFactory(email="n@example.com", full_name=NASTY)
    )
    group.members.add(nasty)
    body = org.client_for("owner").get(_url("group_detail", org, group.pk)).content.decode()
    members_url = _url("group_members", org, group.pk)
    removes = _forms(body, members_url)
    members = list(group.members.select_related("user"))
    applications = list(group.applications.all())
    assert sorted(removes) == sorted(
        [f'<input type="hidden" name="remove_user" value="{m.pk}">' for m in members]
        + [f'<input type="hidden" name="remove_application" value="{a.pk}">' for a in applications]
    )
    for m in members:
        assert f'<a href="{_url("user_detail", org, m.pk)}">{m.user.email}</a>' in body
        assert f'aria-label="Remove {m.user.email}"' in body
    for a in applications:
        assert f'<a href="{_url("application_detail", org, a.pk)}">{a.name}</a>' in body
    assert NASTY not in body and "&lt;b&gt;&quot;x&quot;&amp;y&lt;/b&gt;" in body
    assert 'hx-target="#group-members" hx-swap="outerHTML"' in body


def test_the_group_page_shows_no_forms_to_who_may_not_update(org: Org) -> None:
    group = _big_group(org, 3, applications=1)
    body = org.client_for("readonly").get(_url("group_detail", org, group.pk)).content.decode()
    assert _forms(body, _url("group_members", org, group.pk)) == []
    assert _url("group_update", org, group.pk) not in body
    assert "Remove" not in body


def test_the_group_page_says_when_a_table_is_empty(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    body = org.client_for("owner").get(_url("group_detail", org, group.pk)).content.decode()
    assert "No users in this group yet." in body
    assert "No applications in this group." in body
    body = (
        org.client_for("owner")
        .get(_url("group_detail", org, group.pk), {"members_q": "nobody"})
        .content.decode()
    )
    assert "No user of this group matches “nobody”." in body


def test_the_group_page_queries_do_not_grow_with_members_or_applications(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    small = _big_group(org, 2, applications=1)
    client.get(_url("group_detail", org, small.pk))
    with django_assert_max_num_queries(40) as captured:
        client.get(_url("group_detail", org, small.pk))
    few = len(captured)
    big = GroupFactory(organization=org.organization)
    big.members.add(*MembershipFactory.create_batch(30, organization=org.organization))
    big.applications.add(*ApplicationFactory.create_batch(8, organization=org.organization))
    with django_assert_max_num_queries(few):
        client.get(_url("group_detail", org, big.pk))


def test_the_hand_written_rename_form_is_djangos_markup(org: Org) -> None:
    group = GroupFactory(organization=org.organization, name=NASTY, description=f"a\n{NASTY}")
    form = GroupForm(instance=group, auto_id="group-%s")
    assert _squash(_group_form_html(form)) == _squash(form.render())


def test_a_refused_rename_still_shows_its_errors(org: Org) -> None:
    group = GroupFactory(organization=org.organization)
    response = org.client_for("owner").post(
        _url("group_update", org, group.pk), {"name": "", "description": "d"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in body and 'aria-invalid="true"' in body
    assert '<details class="add-rule" open>' in body


# --- the application page


def _application(org: Org, groups: int) -> Application:
    application = ApplicationFactory(organization=org.organization)
    for i in range(groups):
        GroupFactory(organization=org.organization, name=f"g{i:02d}").applications.add(application)
    return application


def test_the_application_page_links_each_group_and_gives_each_a_remove_form(org: Org) -> None:
    application = _application(org, 3)
    nasty = GroupFactory(organization=org.organization, name=NASTY, description="x" * 100)
    nasty.applications.add(application)
    outside = GroupFactory(organization=org.organization, name="outside")
    body = org.client_for("owner").get(_url("application_detail", org, application.pk))
    body = body.content.decode()
    for group in application.groups.all():
        remove = _url("application_group_remove", org, application.pk, group.pk)
        assert _forms(body, remove) == [""]
        assert f'<a href="{_url("group_detail", org, group.pk)}">' in body
    assert "&lt;b&gt;&quot;x&quot;&amp;y&lt;/b&gt;" in body and NASTY not in body
    assert "x" * 79 + "…" in body  # the description, truncated as truncatechars:80
    # One add form, its picker searching: the groups to join are never listed.
    add = _url("application_group_add", org, application.pk)
    assert body.count(f'action="{add}"') == 1 and 'name="group_q"' in body
    assert str(outside.pk) not in body


def test_the_application_page_shows_no_forms_to_who_may_not_update(org: Org) -> None:
    application = _application(org, 2)
    body = org.client_for("readonly").get(_url("application_detail", org, application.pk))
    body = body.content.decode()
    assert "application_group_remove" not in body
    for group in application.groups.all():
        assert _url("application_group_remove", org, application.pk, group.pk) not in body
    assert _url("application_group_add", org, application.pk) not in body


def _group_reads(captured: object) -> int:
    """How many of the captured queries read rows of groups."""
    sql = [q["sql"] for q in captured.captured_queries]
    return sum(query.startswith('SELECT "organizations_group".') for query in sql)


def test_the_application_page_queries_do_not_grow_with_groups(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    small = _application(org, 1)
    client.get(_url("application_detail", org, small.pk))
    # 10 while the page listed the groups to join; now its groups alone are read.
    with django_assert_max_num_queries(9) as captured:
        client.get(_url("application_detail", org, small.pk))
    assert _group_reads(captured) == 1
    big = ApplicationFactory(organization=org.organization)
    for group in Group.objects.filter(organization=org.organization):
        group.applications.add(big)
    for i in range(15):
        GroupFactory(organization=org.organization, name=f"more{i:02d}").applications.add(big)
    GroupFactory.create_batch(30, organization=org.organization)  # groups it could join
    for application in (big, small):
        with django_assert_max_num_queries(len(captured)):
            client.get(_url("application_detail", org, application.pk))


# --- the user page


def _member_in_groups(org: Org, groups: int) -> Membership:
    member = MembershipFactory(organization=org.organization)
    for i in range(groups):
        GroupFactory(organization=org.organization, name=f"u{i:02d}").members.add(member)
    return member


def test_the_user_page_links_each_group_and_gives_each_a_remove_form(org: Org) -> None:
    member = _member_in_groups(org, 3)
    GroupFactory(organization=org.organization, name=NASTY).members.add(member)
    body = org.client_for("owner").get(_url("user_detail", org, member.pk)).content.decode()
    groups_url = _url("user_groups", org, member.pk)
    groups = list(member.groups.all())
    assert sorted(_forms(body, groups_url)) == sorted(
        [f'<input type="hidden" name="remove" value="{g.pk}">' for g in groups]
    )
    for group in groups:
        assert f'<a href="{_url("group_detail", org, group.pk)}">' in body
    assert 'aria-label="Remove from &lt;b&gt;&quot;x&quot;&amp;y&lt;/b&gt;"' in body


def test_the_user_page_shows_no_forms_to_who_may_not_update(org: Org) -> None:
    member = _member_in_groups(org, 2)
    body = org.client_for("readonly").get(_url("user_detail", org, member.pk)).content.decode()
    assert _url("user_groups", org, member.pk) not in body
    empty = MembershipFactory(organization=org.organization)
    body = org.client_for("owner").get(_url("user_detail", org, empty.pk)).content.decode()
    assert "Not in any group." in body


def test_the_user_page_queries_do_not_grow_with_groups(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    few = _member_in_groups(org, 1)
    client.get(_url("user_detail", org, few.pk))
    with django_assert_max_num_queries(40) as captured:
        client.get(_url("user_detail", org, few.pk))
    many = MembershipFactory(organization=org.organization)
    for group in Group.objects.filter(organization=org.organization):
        group.members.add(many)
    for i in range(15):
        GroupFactory(organization=org.organization, name=f"more{i:02d}").members.add(many)
    with django_assert_max_num_queries(len(captured)):
        client.get(_url("user_detail", org, many.pk))


# --- the navigation


def _nav_links(body: str) -> set[str]:
    return set(re.findall(r'<a href="([^"]+)"', body))


@pytest.mark.parametrize("who", ["owner", "tech", "billing", "readonly"])
def test_the_navigation_shows_each_persona_the_links_it_may_follow(org: Org, who: str) -> None:
    client = org.client_for(who)
    body = client.get(_url("dashboard", org)).content.decode()
    links = _nav_links(body)
    request = RequestFactory().get("/")
    request.user = getattr(org, who).user
    request.organization = org.organization
    request.membership = getattr(org, who)
    nav = Navigation(request)
    for key in ("dashboard", "projects", "iam", "billing", "audit", "settings", "security"):
        name, _permission = NAV_LINKS[key]
        url = reverse(name, args=[org.organization.pk])
        assert getattr(nav, key) in ("", url)
        assert (url in links) == bool(getattr(nav, key)), key
    assert reverse("organizations:list") in links
    assert f'action="{reverse("organizations:switch")}"' in body


def test_the_iam_tabs_link_what_the_persona_may_list(org: Org) -> None:
    body = org.client_for("owner").get(_url("user_list", org)).content.decode()
    tabs = body[body.index('<nav class="tabs"') : body.index("</nav>", body.index('"tabs"'))]
    for key in NAV_LINKS:
        if key in ("users", "invitations", "groups", "applications", "api_keys"):
            assert f'href="{reverse(NAV_LINKS[key][0], args=[org.organization.pk])}"' in tabs
    assert tabs.count("<a ") == 11
    assert f'href="{_url("user_list", org)}" aria-current="page">Users' in tabs
    billing = org.client_for("billing").get(_url("dashboard", org)).content.decode()
    assert _url("user_list", org) not in billing


def test_cached_links_follow_the_organization_and_the_script_prefix(org: Org) -> None:
    other = GroupFactory().organization
    assert link("organizations:dashboard", other.pk) == reverse(
        "organizations:dashboard", args=[other.pk]
    )
    assert link("organizations:list") == reverse("organizations:list")
    set_script_prefix("/portal/")
    try:
        assert link("organizations:dashboard", other.pk) == f"/portal/o/{other.pk}/"
    finally:
        set_script_prefix("/")
