from __future__ import annotations

import datetime
import hashlib
import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from organizations.models import APIKey, Membership, Organization
from organizations.selectors.api_keys import api_keys_of
from organizations.services import api_keys as api_key_services
from policies.models import Policy
from tests.api.conftest import allow
from tests.conftest import Org, assert_access
from tests.factories import (
    API_KEY_SECRET,
    APIKeyFactory,
    ApplicationFactory,
    MembershipFactory,
    PolicyAttachmentFactory,
    ProjectFactory,
    RuleFactory,
)

pytestmark = pytest.mark.django_db


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def today() -> datetime.date:
    return timezone.now().date()


def own_key(membership: Membership, **kwargs: object) -> api_key_services.CreatedAPIKey:
    return api_key_services.api_key_create(
        organization=membership.organization, creator=membership, bearer=membership, **kwargs
    )


def set_cap(org: Org, days: int | None) -> None:
    Organization.objects.filter(pk=org.organization.pk).update(api_key_max_lifetime_days=days)
    org.organization.refresh_from_db()


# ------------------------------------------------------------------------- create


def test_create_a_key_for_yourself_shows_the_secret_exactly_once(
    org: Org, owner_client: Client
) -> None:
    project = ProjectFactory(organization=org.organization, name="web")
    response = owner_client.post(
        url("api_key_create", org),
        {"bearer": "self", "description": "laptop", "default_project": str(project.pk)},
    )
    key = APIKey.objects.get()
    assert response.status_code == 302
    assert response.url == url("api_key_created", org, key.pk)
    assert key.bearer_membership == org.owner and key.bearer_application is None
    assert (key.description, key.default_project, key.expires_at) == ("laptop", project, None)
    assert key.created_by == org.owner.user
    assert re.fullmatch(r"IAMK[A-Z2-7]{16}", key.access_key)

    first = owner_client.get(response.url)
    secret = first.context["secret"]
    body = first.content.decode()
    assert secret and secret in body
    assert len(secret) >= 43  # token_urlsafe(32): 256 random bits
    assert 'data-copy="#api-key-secret"' in body and "js/copy.js" in body
    assert "no-store" in first.headers["Cache-Control"]
    # Stored as a digest only; the secret is nowhere in the database.
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(list(APIKey.objects.values()))
    event = AuditEvent.objects.get(action="iam.api_key.created")
    assert secret not in str(event.data) and event.data["after"]["access_key"] == key.access_key

    second = owner_client.get(response.url)
    assert second.status_code == 200
    assert second.context["secret"] is None
    assert secret not in second.content.decode()
    assert "shown once" in second.content.decode()


def test_the_secret_opens_the_key(org: Org) -> None:
    created = own_key(org.owner)
    assert api_key_services.api_key_authenticate(
        access_key=created.api_key.access_key, secret=created.secret
    ) == (created.api_key)


def test_create_a_key_for_an_application(org: Org, owner_client: Client) -> None:
    application = ApplicationFactory(organization=org.organization, name="ci")
    form = owner_client.get(url("api_key_create", org), {"application": str(application.pk)})
    assert form.context["form"].initial["bearer"] == str(application.pk)
    response = owner_client.post(
        url("api_key_create", org), {"bearer": str(application.pk), "description": "deploys"}
    )
    key = APIKey.objects.get()
    assert response.status_code == 302
    assert key.bearer_application == application and key.bearer_membership is None
    assert key.created_by == org.owner.user


def test_nobody_creates_a_key_for_another_person(org: Org, owner_client: Client) -> None:
    response = owner_client.post(url("api_key_create", org), {"bearer": str(org.tech.pk)})
    assert response.status_code == 400
    assert "nobody creates keys for another person" in response.content.decode()
    assert not APIKey.objects.exists()
    with pytest.raises(ValidationError, match="another person"):
        api_key_services.api_key_create(
            organization=org.organization, creator=org.owner, bearer=org.tech
        )
    assert not APIKey.objects.exists()


def test_keys_only_for_applications_and_projects_of_this_organization(
    org: Org, owner_client: Client
) -> None:
    foreign_app = ApplicationFactory()
    foreign_project = ProjectFactory()
    response = owner_client.post(url("api_key_create", org), {"bearer": str(foreign_app.pk)})
    assert response.status_code == 400
    response = owner_client.post(
        url("api_key_create", org), {"bearer": "self", "default_project": str(foreign_project.pk)}
    )
    assert response.status_code == 400
    assert "Choose a project of this organization." in response.content.decode()
    with pytest.raises(ValidationError):
        api_key_services.api_key_create(
            organization=org.organization, creator=org.owner, bearer=foreign_app
        )
    with pytest.raises(ValidationError):
        own_key(org.owner, default_project=foreign_project)
    assert not APIKey.objects.exists()


def test_create_follows_the_role_matrix(org: Org) -> None:
    create = url("api_key_create", org)
    assert_access(
        org,
        "get",
        create,
        {"owner": 200, "tech": 403, "readonly": 403, "billing": 403, "outsider": 404},
    )
    for who in ("tech", "readonly", "billing"):
        response = org.client_for(who).post(create, {"bearer": "self"})
        assert "iam:api-keys:create" in response.content.decode()
    assert not APIKey.objects.exists()


def test_a_member_allowed_to_create_keys_creates_their_own(org: Org) -> None:
    policy = Policy.objects.create(organization=org.organization, name="Key makers")
    RuleFactory(policy=policy, position=1, actions=["iam:api-keys:create"])
    PolicyAttachmentFactory(policy=policy, membership=org.billing)
    response = org.client_for("billing").post(url("api_key_create", org), {"bearer": "self"})
    assert response.status_code == 302
    assert APIKey.objects.get().bearer_membership == org.billing


def test_the_result_page_of_another_organizations_key_is_404(
    org: Org, owner_client: Client
) -> None:
    foreign = APIKeyFactory()
    assert owner_client.get(url("api_key_created", org, foreign.pk)).status_code == 404


# ------------------------------------------------------------------------- expiry


def test_expiry_must_be_after_today(org: Org, owner_client: Client) -> None:
    response = owner_client.post(
        url("api_key_create", org), {"bearer": "self", "expires_on": today().isoformat()}
    )
    assert response.status_code == 400
    assert "Choose an expiry date after today." in response.content.decode()
    tomorrow = today() + datetime.timedelta(days=1)
    owner_client.post(url("api_key_create", org), {"bearer": "self", "expires_on": tomorrow})
    key = APIKey.objects.get()
    assert key.expires_at == datetime.datetime.combine(tomorrow, datetime.time.min, datetime.UTC)


def test_the_organizations_cap_limits_expiry(org: Org, owner_client: Client) -> None:
    set_cap(org, 30)
    limit = today() + datetime.timedelta(days=30)
    form = owner_client.get(url("api_key_create", org))
    assert form.context["form"].initial["expires_on"] == limit  # defaults to the cap
    assert f'max="{limit.isoformat()}"' in form.content.decode()

    never = owner_client.post(url("api_key_create", org), {"bearer": "self", "expires_on": ""})
    assert never.status_code == 400
    assert "requires API keys to expire" in never.content.decode()
    later = limit + datetime.timedelta(days=1)
    response = owner_client.post(
        url("api_key_create", org), {"bearer": "self", "expires_on": later}
    )
    assert response.status_code == 400
    assert f"choose a date until {limit.isoformat()}" in response.content.decode()
    assert not APIKey.objects.exists()

    with pytest.raises(ValidationError, match="requires API keys to expire within 30 days"):
        own_key(org.owner)
    with pytest.raises(ValidationError, match="expire within 30 days"):
        own_key(org.owner, expires_on=later)

    response = owner_client.post(
        url("api_key_create", org), {"bearer": "self", "expires_on": limit}
    )
    assert response.status_code == 302
    assert APIKey.objects.get().expires_at.date() == limit


# ------------------------------------------------------------------ authentication


def test_authenticate_rejects_wrong_unknown_expired_and_revoked_keys(org: Org) -> None:
    created = own_key(org.owner)
    key = created.api_key
    authenticate = api_key_services.api_key_authenticate
    assert authenticate(access_key=key.access_key, secret=created.secret) is not None
    assert authenticate(access_key=key.access_key, secret=created.secret + "x") is None
    assert authenticate(access_key=key.access_key, secret="") is None
    assert authenticate(access_key="IAMKNOSUCHKEY0000000", secret=created.secret) is None

    APIKey.objects.filter(pk=key.pk).update(expires_at=timezone.now())
    assert authenticate(access_key=key.access_key, secret=created.secret) is None
    APIKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + datetime.timedelta(hours=1))
    assert authenticate(access_key=key.access_key, secret=created.secret) is not None

    api_key_services.api_key_delete(api_key=key, actor=org.owner.user)
    assert authenticate(access_key=key.access_key, secret=created.secret) is None


def test_authenticate_rejects_a_suspended_or_deactivated_bearer(org: Org) -> None:
    created = own_key(org.owner)
    access_key, secret = created.api_key.access_key, created.secret
    Membership.objects.filter(pk=org.owner.pk).update(status=Membership.Status.SUSPENDED)
    assert api_key_services.api_key_authenticate(access_key=access_key, secret=secret) is None
    Membership.objects.filter(pk=org.owner.pk).update(status=Membership.Status.ACTIVE)
    assert api_key_services.api_key_authenticate(access_key=access_key, secret=secret) is not None
    user = org.owner.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert api_key_services.api_key_authenticate(access_key=access_key, secret=secret) is None


def test_a_lifetime_cap_stops_older_keys_including_those_made_before_it(org: Org) -> None:
    created = own_key(org.owner)  # no cap yet: the key never expires
    access_key, secret = created.api_key.access_key, created.secret
    set_cap(org, 30)
    now = timezone.now()
    authenticate = api_key_services.api_key_authenticate
    assert authenticate(access_key=access_key, secret=secret, now=now) is not None
    later = now + datetime.timedelta(days=31)
    assert authenticate(access_key=access_key, secret=secret, now=later) is None
    set_cap(org, None)
    assert authenticate(access_key=access_key, secret=secret, now=later) is not None


def test_a_removed_bearer_takes_their_keys_along(org: Org) -> None:
    created = own_key(org.owner)
    MembershipFactory(organization=org.organization, is_owner=True)
    org.owner.delete()
    assert not APIKey.objects.filter(pk=created.api_key.pk).exists()


def test_authenticate_records_last_use_at_most_once_a_minute(org: Org) -> None:
    key = APIKeyFactory(bearer_application__organization=org.organization)
    now = timezone.now()
    authenticated = api_key_services.api_key_authenticate(
        access_key=key.access_key, secret=API_KEY_SECRET, ip="192.0.2.1", now=now
    )
    assert authenticated is not None and authenticated.bearer_application_id
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (now, "192.0.2.1")
    api_key_services.api_key_authenticate(
        access_key=key.access_key,
        secret=API_KEY_SECRET,
        ip="192.0.2.2",
        now=now + datetime.timedelta(seconds=30),
    )
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (now, "192.0.2.1")
    later = now + datetime.timedelta(seconds=61)
    api_key_services.api_key_authenticate(
        access_key=key.access_key, secret=API_KEY_SECRET, ip="192.0.2.2", now=later
    )
    key.refresh_from_db()
    assert (key.last_used_at, key.last_used_ip) == (later, "192.0.2.2")


# --------------------------------------------------------------------------- list


def test_list_follows_the_role_matrix(org: Org) -> None:
    assert_access(
        org,
        "get",
        url("api_key_list", org),
        {"owner": 200, "tech": 200, "readonly": 200, "billing": 403, "outsider": 404},
    )


def test_list_shows_keys_flags_and_the_mine_filter(org: Org, owner_client: Client) -> None:
    mine = own_key(org.owner, description="my laptop").api_key
    application = ApplicationFactory(organization=org.organization, name="ci")
    now = timezone.now()
    soon = APIKeyFactory(
        bearer_application=application,
        description="soon",
        expires_at=now + datetime.timedelta(days=3),
        last_used_at=now,
        last_used_ip="198.51.100.7",
    )
    expired = APIKeyFactory(
        bearer_application=application, description="old", expires_at=now - datetime.timedelta(1)
    )
    later = APIKeyFactory(
        bearer_application=application,
        description="later",
        expires_at=now + datetime.timedelta(days=30),
    )
    APIKeyFactory(description="foreign")
    response = owner_client.get(url("api_key_list", org))
    rows = {key.pk: key for key in response.context["page"]}
    assert set(rows) == {mine.pk, soon.pk, expired.pk, later.pk}
    assert (rows[soon.pk].expires_soon, rows[soon.pk].is_expired) == (True, False)
    assert (rows[expired.pk].expires_soon, rows[expired.pk].is_expired) == (False, True)
    assert (rows[later.pk].expires_soon, rows[later.pk].is_expired) == (False, False)
    body = response.content.decode()
    assert "Expires soon" in body and "Expired" in body and "198.51.100.7" in body
    assert "foreign" not in body and mine.access_key in body and "ci" in body

    filtered = owner_client.get(url("api_key_list", org), {"mine": "1"})
    assert [key.pk for key in filtered.context["page"]] == [mine.pk]
    empty = org.client_for("readonly").get(url("api_key_list", org), {"mine": "1"})
    assert "You have no API key in this organization." in empty.content.decode()


def test_list_runs_the_same_queries_for_2_or_40_keys(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("tech")
    application = ApplicationFactory(organization=org.organization)
    APIKeyFactory.create_batch(2, bearer_application=application)
    with django_assert_max_num_queries(25) as small:
        client.get(url("api_key_list", org))
    APIKeyFactory.create_batch(
        19,
        bearer_application=application,
        default_project=ProjectFactory(organization=org.organization),
        disabled_at=timezone.now(),  # each then shows its status and Enable form
        disabled_reason="unused for 30 days",
    )
    for _ in range(19):
        own_key(MembershipFactory(organization=org.organization))
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url("api_key_list", org))
    assert response.context["page"].paginator.count == 40


def test_api_keys_of_selects_one_bearer(org: Org) -> None:
    mine = own_key(org.owner).api_key
    application = ApplicationFactory(organization=org.organization)
    theirs = APIKeyFactory(bearer_application=application)
    assert list(api_keys_of(organization=org.organization, membership=org.owner)) == [mine]
    assert list(api_keys_of(organization=org.organization, application=application)) == [theirs]
    assert list(api_keys_of(organization=MembershipFactory().organization)) == []


# ------------------------------------------------------------------------- revoke


def test_anyone_allowed_to_delete_keys_revokes_any_key(org: Org, owner_client: Client) -> None:
    key = APIKeyFactory(bearer_application__organization=org.organization)
    confirm = owner_client.get(url("api_key_delete", org, key.pk))
    assert "Revoke API key" in confirm.content.decode()
    response = owner_client.post(url("api_key_delete", org, key.pk))
    assert response.url == url("api_key_list", org)
    assert not APIKey.objects.exists()
    event = AuditEvent.objects.get(action="iam.api_key.deleted")
    assert event.data["before"]["access_key"] == key.access_key


def test_the_bearer_revokes_their_own_key_without_the_delete_permission(org: Org) -> None:
    key = own_key(org.tech).api_key
    other = own_key(org.owner).api_key
    tech = org.client_for("tech")
    listing = tech.get(url("api_key_list", org)).content.decode()
    assert listing.count(">Revoke<") == 1  # their own key only
    response = tech.post(url("api_key_delete", org, other.pk))
    assert response.status_code == 403 and "iam:api-keys:delete" in response.content.decode()
    back = url("api_key_list", org) + "?mine=1"
    response = tech.post(url("api_key_delete", org, key.pk), {"next": back})
    assert response.url == back
    assert list(APIKey.objects.all()) == [other]


def test_revoke_follows_the_role_matrix(org: Org) -> None:
    key = APIKeyFactory(bearer_application__organization=org.organization)
    assert_access(
        org,
        "post",
        url("api_key_delete", org, key.pk),
        {"tech": 403, "readonly": 403, "billing": 403, "outsider": 404},
    )
    assert APIKey.objects.filter(pk=key.pk).exists()
    assert (
        org.client_for("owner").get(url("api_key_delete", org, APIKeyFactory().pk)).status_code
        == 404
    )


def test_an_explicit_deny_stops_even_the_bearer(org: Org) -> None:
    key = own_key(org.tech).api_key
    policy = Policy.objects.create(organization=org.organization, name="No key changes")
    RuleFactory(policy=policy, position=1, effect="deny", actions=["iam:api-keys:delete"])
    PolicyAttachmentFactory(policy=policy, membership=org.tech)
    response = org.client_for("tech").post(url("api_key_delete", org, key.pk))
    assert response.status_code == 403
    assert APIKey.objects.filter(pk=key.pk).exists()


def test_a_suspended_bearer_cannot_revoke(org: Org) -> None:
    key = own_key(org.tech).api_key
    client = org.client_for("tech")
    Membership.objects.filter(pk=org.tech.pk).update(status=Membership.Status.SUSPENDED)
    assert client.post(url("api_key_delete", org, key.pk)).status_code == 403
    assert APIKey.objects.filter(pk=key.pk).exists()


def test_revoke_ignores_an_unsafe_next(org: Org, owner_client: Client) -> None:
    key = APIKeyFactory(bearer_application__organization=org.organization)
    response = owner_client.post(
        url("api_key_delete", org, key.pk), {"next": "https://evil.example/o/"}
    )
    assert response.url == url("api_key_list", org)


def test_the_key_list_shows_when_the_lifetime_cap_stops_older_keys(
    org: Org, owner_client: Client
) -> None:
    forever = own_key(org.owner, description="no expiry").api_key
    late = own_key(
        org.owner, description="late", expires_on=today() + datetime.timedelta(days=300)
    ).api_key
    early = own_key(
        org.owner, description="early", expires_on=today() + datetime.timedelta(days=10)
    ).api_key
    APIKey.objects.filter(pk=forever.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=40)
    )
    APIKey.objects.filter(pk=late.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=25)
    )
    set_cap(org, 30)
    keys = {
        key.pk: key
        for key in api_keys_of(organization=Organization.objects.get(pk=org.organization.pk))
    }

    assert keys[forever.pk].is_expired and keys[forever.pk].capped  # 40 days old, cap 30
    assert keys[late.pk].expires_soon and keys[late.pk].capped  # stops in 5 days, not 300
    assert not keys[early.pk].capped and not keys[early.pk].expires_soon
    assert keys[early.pk].stops_at == early.expires_at
    body = owner_client.get(url("api_key_list", org)).content.decode()
    assert body.count("organization's maximum key lifetime") == 2
    assert "Expired" in body and "Expires soon" in body
    dashboard = owner_client.get(url("dashboard", org))
    assert [key.pk for key in dashboard.context["expiring_keys"]] == [late.pk]


# ---------------------------------------------------------------------- dashboard


def test_dashboard_flags_keys_expiring_within_seven_days(org: Org) -> None:
    soon = own_key(org.tech, expires_on=today() + datetime.timedelta(days=3)).api_key
    own_key(org.tech, expires_on=today() + datetime.timedelta(days=20))
    application = ApplicationFactory(organization=org.organization, name="ci")
    app_soon = APIKeyFactory(
        bearer_application=application, expires_at=timezone.now() + datetime.timedelta(days=2)
    )
    dashboard = url("dashboard", org)
    owner_page = org.client_for("owner").get(dashboard)
    assert [k.pk for k in owner_page.context["expiring_keys"]] == [app_soon.pk, soon.pk]
    assert "API keys expiring within 7 days" in owner_page.content.decode()
    # Without iam:api-keys:list, a member sees only their own expiring keys.
    billing_key = own_key(org.billing, expires_on=today() + datetime.timedelta(days=1)).api_key
    billing_page = org.client_for("billing").get(dashboard)
    assert [k.pk for k in billing_page.context["expiring_keys"]] == [billing_key.pk]
    quiet = org.client_for("readonly").get(dashboard)
    assert quiet.context["expiring_keys"]  # readonly lists keys: sees the organization's
    APIKey.objects.all().delete()
    assert "expiring within 7 days" not in org.client_for("owner").get(dashboard).content.decode()


def test_each_row_links_its_bearer_and_revoke_page_and_dates_in_utc(org: Org) -> None:
    """The table decides and reverses once: each row still gets its own links."""
    application = ApplicationFactory(organization=org.organization, name="ci")
    used = timezone.now().replace(microsecond=0)
    keys = [APIKeyFactory(bearer_application=application, last_used_at=used) for _ in range(3)]
    page = org.client_for("owner").get(url("api_key_list", org)).content.decode()
    application_url = reverse(
        "organizations:application_detail", args=[org.organization.pk, application.pk]
    )
    assert page.count(f'href="{application_url}"') == 3
    for key in keys:
        revoke = reverse("organizations:api_key_delete", args=[org.organization.pk, key.pk])
        assert f'href="{revoke}?next=' in page
    assert (
        f'<time datetime="{used:%Y-%m-%dT%H:%M:%S}+00:00">{used:%Y-%m-%d %H:%M:%S}</time>' in page
    )
    # Without iam:applications:read or iam:api-keys:delete, names only and no revoke.
    page = org.client_for("billing").get(url("api_key_list", org))
    assert page.status_code == 403
    readonly = org.client_for("readonly").get(url("api_key_list", org)).content.decode()
    assert "Revoke" not in readonly


# ------------------------------------------------------------------------- enable


def disabled_key(org: Org) -> APIKey:
    """An application's key disabled by the unused-key sweep."""
    key = APIKeyFactory(bearer_application__organization=org.organization)
    api_key_services.api_key_disable(api_key=key, actor=None, reason="unused for 30 days")
    return key


def test_a_disabled_key_shows_why_and_enable_brings_it_back(org: Org, owner_client: Client) -> None:
    key = disabled_key(org)
    back = url("api_key_list", org) + "?page=1"
    page = owner_client.get(back).content.decode()
    assert "Disabled" in page and "unused for 30 days, since" in page
    enable = url("api_key_enable", org, key.pk)
    assert f'action="{enable}"' in page
    assert f'name="next" value="{url("api_key_list", org)}?page=1"' in page
    response = owner_client.post(enable, {"next": back})
    assert response.url == back
    key.refresh_from_db()
    assert key.disabled_at is None and key.disabled_reason == "" and key.enabled_at
    event = AuditEvent.objects.get(action="iam.api_key.enabled")
    assert event.actor_user == org.owner.user and event.target_id == str(key.pk)
    assert event.data == {"disabled_for": "unused for 30 days"}
    assert api_key_services.api_key_authenticate(access_key=key.access_key, secret=API_KEY_SECRET)
    page = owner_client.get(back).content.decode()
    assert "Disabled" not in page and enable not in page
    # Enabling a key that is not disabled changes nothing.
    again = owner_client.post(enable, follow=True)
    assert "was not disabled" in again.content.decode()
    assert AuditEvent.objects.filter(action="iam.api_key.enabled").count() == 1


def test_enable_follows_the_role_matrix(org: Org) -> None:
    key = disabled_key(org)
    readonly = org.client_for("readonly").get(url("api_key_list", org)).content.decode()
    assert "Disabled" in readonly and url("api_key_enable", org, key.pk) not in readonly
    assert_access(
        org,
        "post",
        url("api_key_enable", org, key.pk),
        {"tech": 403, "readonly": 403, "billing": 403, "outsider": 404},
    )
    key.refresh_from_db()
    assert key.disabled_at is not None
    elsewhere = APIKeyFactory()
    api_key_services.api_key_disable(api_key=elsewhere, actor=None, reason="unused")
    owner = org.client_for("owner")
    assert owner.post(url("api_key_enable", org, elsewhere.pk)).status_code == 404
    assert owner.get(url("api_key_enable", org, key.pk)).status_code == 405
    elsewhere.refresh_from_db()
    assert elsewhere.disabled_at is not None


def test_enable_refuses_a_key_holding_more_than_its_author(org: Org) -> None:
    """The delegation ceiling: a key of an application reading invoices stays disabled
    for someone allowed to manage keys but not to read invoices."""
    key = disabled_key(org)
    allow(key.bearer_application, "billing:invoices:read")
    keeper = MembershipFactory(organization=org.organization)
    allow(keeper, "iam:api-keys:delete", "iam:api-keys:list")
    client = Client()
    client.force_login(keeper.user)
    response = client.post(url("api_key_enable", org, key.pk), follow=True)
    assert "only grant what you hold" in response.content.decode()
    key.refresh_from_db()
    assert key.disabled_at is not None
