"""A SCIM token is an actor of its own in the trail: recorded, shown and filtered as one,
and named after it is revoked."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit import events
from audit.integrity import verify_chain
from audit.models import AuditEvent
from audit.services import record
from scim.tokens import CreatedToken, scim_token_create, scim_token_revoke
from tests.conftest import Org

pytestmark = pytest.mark.django_db


@pytest.fixture
def created(org: Org) -> CreatedToken:
    return scim_token_create(organization=org.organization, actor=org.owner.user, name="Okta")


def _by_token(org: Org, created: CreatedToken) -> AuditEvent:
    return record(
        action=events.GROUP_CREATED,
        organization=org.organization,
        actor=created.token.audit_actor,
        target_label="Finance",
    )


def test_a_token_is_recorded_as_the_actor_vouched_for_by_its_owner(
    org: Org, created: CreatedToken
) -> None:
    event = _by_token(org, created)
    token = created.token
    assert (event.actor_type, event.actor_id) == ("scim_token", str(token.pk))
    assert event.actor_label == f"SCIM token Okta ({token.prefix})"
    assert event.actor_user == org.owner.user  # as an API key's bearer
    assert event.principal == f"scim_token:{token.pk}"
    assert event.message == f"SCIM token Okta ({token.prefix}) created group Finance"

    scim_token_revoke(token=token, actor=org.owner.user)
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor_label == f"SCIM token Okta ({created.token.prefix})"
    assert verify_chain(org.organization.pk).ok


def test_the_trail_shows_and_filters_a_token(
    owner_client: Client, org: Org, created: CreatedToken
) -> None:
    event = _by_token(org, created)
    record(action=events.PROJECT_CREATED, organization=org.organization, actor=org.tech.user)
    trail = reverse("audit:event_list", args=[org.organization.pk])

    listed = owner_client.get(trail).content.decode()
    assert event.actor_label in listed and "SCIM token</span>" in listed

    principal = f"scim_token:{created.token.pk}"
    for typed in (principal, created.token.prefix):
        response = owner_client.get(trail, {"principal": typed})
        assert response.status_code == 200
        assert [e.pk for e in response.context["page"]] == [event.pk], typed

    detail = reverse("audit:event_detail", args=[org.organization.pk, event.public_id])
    html = owner_client.get(detail).content.decode()
    assert "(SCIM token)" in html
    assert f"?principal=scim_token%3A{created.token.pk}" in html
