"""One canonical spelling per mailbox: storage, sign-up, sign-in, reset, the migration."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from accounts.emails import NON_ASCII_LOCAL_PART, canonical_email
from accounts.models import User
from organizations.services.people import member_create
from tests.accounts.helpers import password_step
from tests.conftest import Org
from tests.factories import PASSWORD, UserFactory

BILLING = "billing@acme.example"
# Spellings of BILLING's mailbox: case, fullwidth letters and dot, soft hyphen in the domain.
SAME_MAILBOX = [
    "Billing@ACME.example",
    "billing@\uff41\uff43\uff4d\uff45.example",
    "billing@acme\uff0eexample",
    "billing@ac\u00adme.example",
]
SALES = "sales@acme.example"
# Look-alike local parts that case-insensitive comparisons fold onto BILLING and SALES
# (dotless i, long s).
LOOK_ALIKES = ["b\u0131ll\u0131ng@acme.example", "\u017fales@acme.example"]


@pytest.mark.parametrize("spelling", SAME_MAILBOX)
def test_spellings_of_one_mailbox_have_one_canonical_form(spelling: str) -> None:
    assert canonical_email(spelling) == BILLING


def test_a_sharp_s_in_the_domain_is_its_ss_spelling() -> None:
    assert canonical_email("ops@stra\u00dfe.example") == "ops@strasse.example"
    assert canonical_email("ops@b\u00fccher.example") == "ops@xn--bcher-kva.example"


@pytest.mark.parametrize("spelling", [*LOOK_ALIKES, "\uff42illing@acme.example"])
def test_non_ascii_local_parts_are_refused(spelling: str) -> None:
    with pytest.raises(ValidationError) as refused:
        canonical_email(spelling)
    assert refused.value.messages == [NON_ASCII_LOCAL_PART]


@pytest.mark.parametrize("junk", ["", "no-at-sign", "a@", "a@.example", "a\x00@x.example"])
def test_junk_has_no_canonical_form(junk: str) -> None:
    with pytest.raises(ValidationError):
        canonical_email(junk)


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", SAME_MAILBOX)
def test_no_second_account_for_one_mailbox(spelling: str, client: Client) -> None:
    UserFactory(email=BILLING)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(email=spelling, password="x")
    response = client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Eve",
            "email": spelling,
            "password": "analytical-engine-1843",
            "organization_name": "Eve Inc",
        },
    )
    assert response.status_code == 200
    assert "An account with this email already exists" in response.content.decode()
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_a_member_cannot_be_created_for_an_existing_mailbox(org: Org) -> None:
    UserFactory(email=BILLING)
    with pytest.raises(ValidationError, match="already exists"):
        member_create(
            organization=org.organization,
            actor=org.owner.user,
            email="billing@\uff41cme.example",
            full_name="Eve",
        )


@pytest.mark.django_db
def test_signup_refuses_a_look_alike_local_part_with_a_clear_message(client: Client) -> None:
    response = client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Eve",
            "email": LOOK_ALIKES[0],
            "password": "analytical-engine-1843",
            "organization_name": "Eve Inc",
        },
    )
    assert response.status_code == 200
    assert "accented and look-alike letters are not accepted" in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", LOOK_ALIKES)
def test_look_alike_spellings_do_not_sign_in(spelling: str, client: Client) -> None:
    UserFactory(email=BILLING)
    UserFactory(email=SALES)
    response = password_step(client, spelling, PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_spellings_of_one_mailbox_sign_in_to_its_account(client: Client) -> None:
    user = UserFactory(email=BILLING)
    assert password_step(client, SAME_MAILBOX[1], PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_password_reset_matches_the_canonical_address_only(client: Client) -> None:
    UserFactory(email=BILLING)
    UserFactory(email=SALES)
    client.post(reverse("accounts:password_reset"), {"email": LOOK_ALIKES[1]})
    assert mail.outbox == []
    client.post(reverse("accounts:password_reset"), {"email": SAME_MAILBOX[3]})
    assert [message.to for message in mail.outbox] == [[BILLING]]


@pytest.mark.django_db
def test_the_migration_canonicalises_and_reports_collisions(capsys) -> None:
    lone = UserFactory(email="Ops@stra\u00dfe.example")
    first = UserFactory(email=BILLING)
    second = UserFactory(email=SAME_MAILBOX[1])
    odd = UserFactory(email=LOOK_ALIKES[0])
    migration = importlib.import_module("accounts.migrations.0004_canonical_emails")
    migration.canonicalise_emails(apps, None)
    for user in (lone, first, second, odd):
        user.refresh_from_db()
    assert lone.email == "ops@strasse.example"
    # Two accounts for one mailbox: both kept as they were, and reported.
    assert (first.email, second.email) == (BILLING, SAME_MAILBOX[1])
    assert odd.email == LOOK_ALIKES[0]
    report = capsys.readouterr().out
    assert "not merged" in report and repr(SAME_MAILBOX[1]) in report
    assert "no canonical form" in report and repr(LOOK_ALIKES[0]) in report
