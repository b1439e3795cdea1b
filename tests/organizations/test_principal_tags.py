"""Tags of users and applications (#14), which policy conditions read as `principal.tags`:
shown on their pages, edited by who may update that principal (owners' only by owners),
audited, and the authorization version bumped."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from organizations.models import Application, Membership
from organizations.services import applications as application_services
from organizations.services import people as people_services
from organizations.tags import TAGS_MAX
from policies.delegation import DelegationRefused
from policies.models import Policy, Rule
from tests.accounts.helpers import expire_sudo
from tests.api.conftest import allow
from tests.conftest import Org, assert_access
from tests.factories import ApplicationFactory, MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

TEAM_RULE = 'resource.tags["team"] == principal.tags["team"]'


def _url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def rows(*pairs: tuple[str, str], initial: int = 0) -> dict[str, Any]:
    """The tags editor's POST: one key / value row per pair."""
    data: dict[str, Any] = {
        "tags-TOTAL_FORMS": len(pairs),
        "tags-INITIAL_FORMS": initial,
        "tags-MIN_NUM_FORMS": 0,
        "tags-MAX_NUM_FORMS": TAGS_MAX,
    }
    for number, (key, value) in enumerate(pairs):
        data[f"tags-{number}-key"], data[f"tags-{number}-value"] = key, value
    return data


def version(org: Org) -> int:
    org.organization.refresh_from_db()
    return org.organization.authz_version


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def manager(org: Org) -> tuple[Membership, Client]:
    """An IAM manager (iam:users:update, iam:applications:update), not an owner."""
    membership = MembershipFactory(organization=org.organization)
    iam = Policy.objects.get(kind=Policy.Kind.MANAGED, name="IAMManager")
    membership.policy_attachments.create(policy=iam, organization=org.organization)
    client = Client()
    client.force_login(membership.user)
    return membership, client


# ----------------------------------------------------------------------------- users


def test_a_users_tags_are_set_from_their_page_audited_and_bumped(org: Org) -> None:
    client = org.client_for("owner")
    url = _url("user_tags", org, org.tech.pk)
    assert client.get(url).status_code == 200
    before = version(org)

    response = client.post(url, rows(("team", "web"), ("cost-center", " 42 "), ("", "")))

    assert response.status_code == 302
    assert response.url == _url("user_detail", org, org.tech.pk)
    org.tech.refresh_from_db()
    assert org.tech.tags == {"team": "web", "cost-center": "42"}
    assert version(org) == before + 1
    [event] = events("iam.user.updated")
    assert event.target_label == org.tech.user.email and event.actor_user == org.owner.user
    assert event.data == {
        "before": {"tags": {}},
        "after": {"tags": {"team": "web", "cost-center": "42"}},
    }
    page = client.get(_url("user_detail", org, org.tech.pk)).content.decode()
    assert "<code>team</code></td><td>web</td>" in page
    assert f'href="{url}"' in page


def test_the_editor_shows_the_tags_and_an_emptied_row_removes_one(org: Org) -> None:
    people_services.membership_set_tags(
        membership=org.tech, tags={"b": "2", "a": "1"}, actor=org.owner
    )
    client = org.client_for("owner")
    url = _url("user_tags", org, org.tech.pk)
    form = client.get(url).content.decode()
    assert form.index('value="a"') < form.index('value="b"')  # sorted by key
    assert client.post(url, rows(("a", "1"), ("", ""), initial=2)).status_code == 302
    org.tech.refresh_from_db()
    assert org.tech.tags == {"a": "1"}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ((("bad key", "x"),), "must be 1 to 64 letters"),
        ((("team", "a\nb"),), "on one line"),
        ((("team", "x"), ("team", "y")), "Row 2: the key “team” is already used above."),
        ((("", "lonely"),), "Row 1: enter a key for the value “lonely”."),
        ((("k", "v" * 257),), "at most 256 characters"),
    ],
)
def test_invalid_tags_are_refused_keeping_what_was_typed(
    org: Org, pairs: tuple[tuple[str, str], ...], message: str
) -> None:
    before = version(org)
    response = org.client_for("owner").post(
        _url("user_tags", org, org.tech.pk), rows(*pairs, ("kept", "typed"))
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert 'value="kept"' in body and 'value="typed"' in body
    org.tech.refresh_from_db()
    assert org.tech.tags == {} and version(org) == before
    assert not events("iam.user.updated")


def test_more_than_the_maximum_is_refused(org: Org) -> None:
    pairs = [(f"k{n}", "v") for n in range(TAGS_MAX + 1)]
    response = org.client_for("owner").post(_url("user_tags", org, org.tech.pk), rows(*pairs))
    assert response.status_code == 400
    assert f"at most {TAGS_MAX} tags." in response.content.decode()


def test_unchanged_tags_record_nothing(org: Org) -> None:
    people_services.membership_set_tags(membership=org.tech, tags={"a": "1"}, actor=org.owner)
    before = version(org)
    people_services.membership_set_tags(membership=org.tech, tags={"a": "1"}, actor=org.owner)
    assert version(org) == before and len(events("iam.user.updated")) == 1


def test_who_may_edit_a_users_tags(org: Org) -> None:
    url = _url("user_tags", org, org.tech.pk)
    assert_access(org, "get", url, {"owner": 200, "tech": 403, "billing": 403, "readonly": 403})
    assert_access(org, "get", url, {"outsider": 404})
    assert_access(org, "post", url, {"readonly": 403, "outsider": 404}, **rows(("a", "b")))
    org.tech.refresh_from_db()
    assert org.tech.tags == {}


def test_another_organizations_user_is_404(org: Org) -> None:
    foreign = MembershipFactory(organization=OrganizationFactory())
    client = org.client_for("owner")
    assert client.get(_url("user_tags", org, foreign.pk)).status_code == 404
    assert client.post(_url("user_tags", org, foreign.pk), rows(("a", "b"))).status_code == 404
    foreign.refresh_from_db()
    assert foreign.tags == {}


def test_only_owners_retag_owners_and_nobody_retags_themselves(org: Org) -> None:
    iam_manager, client = manager(org)
    colleague_page = client.get(_url("user_detail", org, org.tech.pk)).content.decode()
    owner_page = client.get(_url("user_detail", org, org.owner.pk)).content.decode()
    own_page = client.get(_url("user_detail", org, iam_manager.pk)).content.decode()
    assert ">Edit tags</a>" in colleague_page
    assert ">Edit tags</a>" not in owner_page and ">Edit tags</a>" not in own_page

    refused = client.post(_url("user_tags", org, org.owner.pk), rows(("a", "b")), follow=True)
    assert "You cannot change an owner" in refused.content.decode()
    own = client.post(_url("user_tags", org, iam_manager.pk), rows(("a", "b")), follow=True)
    assert "You cannot change your own tags." in own.content.decode()
    with pytest.raises(ValidationError, match="Only owners can change the tags of an owner"):
        people_services.membership_set_tags(
            membership=org.owner, tags={"a": "b"}, actor=iam_manager
        )
    with pytest.raises(ValidationError, match="You cannot change the tags of yourself"):
        people_services.membership_set_tags(membership=org.owner, tags={"a": "b"}, actor=org.owner)

    assert client.post(_url("user_tags", org, org.tech.pk), rows(("a", "b"))).status_code == 302
    other_owner = MembershipFactory(organization=org.organization, is_owner=True)
    people_services.membership_set_tags(
        membership=other_owner, tags={"team": "web"}, actor=org.owner
    )
    other_owner.refresh_from_db()
    org.owner.refresh_from_db()
    assert other_owner.tags == {"team": "web"} and org.owner.tags == {}


def test_editing_tags_asks_for_a_fresh_confirmation(org: Org) -> None:
    client = org.client_for("owner")
    expire_sudo(client)
    response = client.post(_url("user_tags", org, org.tech.pk), rows(("a", "b")))
    assert response.status_code == 302 and reverse("accounts:confirm") in response.url
    org.tech.refresh_from_db()
    assert org.tech.tags == {}


def test_retagging_is_within_the_authors_rights(org: Org) -> None:
    """A rule whose condition reads principal.tags may start matching after a retag: an
    IAM manager who does not hold its actions cannot retag its holder; an owner can."""
    iam_manager, client = manager(org)
    allow(org.tech, "compute:instances:*", scope=Rule.Scope.ALL_PROJECTS, condition=TEAM_RULE)
    response = client.post(_url("user_tags", org, org.tech.pk), rows(("team", "web")))
    assert response.status_code == 400
    assert "You can only grant what you hold yourself" in response.content.decode()
    org.tech.refresh_from_db()
    assert org.tech.tags == {}
    assert AuditEvent.objects.filter(action="authz.delegation.refused").count() == 1

    with pytest.raises(DelegationRefused):
        people_services.membership_set_tags(
            membership=org.tech, tags={"team": "web"}, actor=iam_manager
        )
    people_services.membership_set_tags(membership=org.tech, tags={"team": "web"}, actor=org.owner)
    # A principal none of whose conditions read its tags is retagged freely.
    assert client.post(_url("user_tags", org, org.billing.pk), rows(("a", "b"))).status_code == 302


def test_the_user_page_costs_the_same_queries_whatever_the_tags(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("owner")
    url = _url("user_detail", org, org.tech.pk)
    people_services.membership_set_tags(membership=org.tech, tags={"a": "1"}, actor=org.owner)
    with django_assert_max_num_queries(40) as small:
        assert client.get(url).status_code == 200
    many = {f"key-{n}": f"value {n}" for n in range(TAGS_MAX)}
    people_services.membership_set_tags(membership=org.tech, tags=many, actor=org.owner)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("<code>key-") == TAGS_MAX


# ---------------------------------------------------------------------- applications


def test_an_applications_tags_are_set_from_its_page_audited_and_bumped(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    client = org.client_for("owner")
    url = _url("application_tags", org, application.pk)
    assert client.get(url).status_code == 200
    before = version(org)

    response = client.post(url, rows(("team", "data")))

    assert response.status_code == 302
    application.refresh_from_db()
    assert application.tags == {"team": "data"} and version(org) == before + 1
    [event] = events("iam.application.updated")
    assert event.data == {"before": {"tags": {}}, "after": {"tags": {"team": "data"}}}
    page = client.get(_url("application_detail", org, application.pk)).content.decode()
    assert "<code>team</code></td><td>data</td>" in page and f'href="{url}"' in page

    bad = client.post(url, rows(("bad key", "x"), ("kept", "typed")))
    assert bad.status_code == 400 and 'value="kept"' in bad.content.decode()
    application.refresh_from_db()
    assert application.tags == {"team": "data"}


def test_who_may_edit_an_applications_tags(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    url = _url("application_tags", org, application.pk)
    expected = {"owner": 200, "tech": 403, "billing": 403, "readonly": 403, "outsider": 404}
    assert_access(org, "get", url, expected)
    _, client = manager(org)
    assert client.post(url, rows(("a", "b"))).status_code == 302
    foreign = ApplicationFactory(organization=OrganizationFactory())
    response = org.client_for("owner").post(_url("application_tags", org, foreign.pk), rows())
    assert response.status_code == 404
    assert Application.objects.get(pk=foreign.pk).tags == {}


def test_retagging_an_application_is_within_the_authors_rights(org: Org) -> None:
    application = ApplicationFactory(organization=org.organization)
    allow(application, "compute:instances:*", scope=Rule.Scope.ALL_PROJECTS, condition=TEAM_RULE)
    _, client = manager(org)
    response = client.post(_url("application_tags", org, application.pk), rows(("team", "x")))
    assert response.status_code == 400
    assert "You can only grant what you hold yourself" in response.content.decode()
    application_services.application_set_tags(
        application=application, tags={"team": "x"}, actor=org.owner.user
    )
    application.refresh_from_db()
    assert application.tags == {"team": "x"}
