from __future__ import annotations

import pytest
from django.db import IntegrityError

from accounts.models import User


@pytest.mark.django_db
def test_email_is_stored_lowercase() -> None:
    user = User.objects.create_user(email="  Alice@Example.COM ", password="x")
    assert user.email == "alice@example.com"


@pytest.mark.django_db
def test_email_is_unique_whatever_its_case() -> None:
    User.objects.create_user(email="bob@example.com", password="x")
    with pytest.raises(IntegrityError):
        # Bypass the manager's normalisation: the database constraint itself must refuse.
        User.objects.create(email="BOB@example.com")


@pytest.mark.django_db
def test_natural_key_lookup_ignores_case() -> None:
    user = User.objects.create_user(email="carol@example.com", password="x")
    assert User.objects.get_by_natural_key("CAROL@example.com") == user


@pytest.mark.django_db
def test_primary_key_is_a_uuid() -> None:
    user = User.objects.create_user(email="dan@example.com", password="x")
    assert len(str(user.pk)) == 36
