"""Two owners stepping down at the same moment: the organization row lock makes them take
turns, so one of them stays. Needs real concurrent transactions: PostgreSQL only."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from organizations.models import Membership
from organizations.services import people as people_services
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(*calls: object) -> list[str]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call: object) -> None:
        try:
            barrier.wait()
            call()
            outcomes.append("ok")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.parametrize("attempt", range(3))
def test_two_owners_stepping_down_at_once_leave_one_owner(attempt: int) -> None:
    organization = OrganizationFactory()
    first = MembershipFactory(organization=organization, is_owner=True)
    second = MembershipFactory(organization=organization, is_owner=True)
    outcomes = _race(
        lambda: people_services.owner_step_down(membership=first),
        lambda: people_services.owner_step_down(membership=second),
    )
    assert outcomes == ["ok", "refused"]
    assert Membership.objects.filter(organization=organization, is_owner=True).count() == 1


def test_two_owners_removing_each_other_at_once_leave_one_owner() -> None:
    organization = OrganizationFactory()
    first = MembershipFactory(organization=organization, is_owner=True)
    second = MembershipFactory(organization=organization, is_owner=True)
    outcomes = _race(
        lambda: people_services.membership_remove(membership=second, actor=first),
        lambda: people_services.membership_remove(membership=first, actor=second),
    )
    # The second request finds its actor gone or the target last: never zero owners.
    assert Membership.objects.filter(organization=organization, is_owner=True).count() == 1
    assert "ok" in outcomes
