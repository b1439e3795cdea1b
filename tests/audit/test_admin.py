from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from tests.conftest import Org, otp_verify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _operator_client() -> Client:
    client = Client()
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    otp_verify(client, operator)  # the admin wants staff verified with an authenticator
    return client


def test_an_operator_deleting_an_organization_leaves_an_event_that_outlives_it(
    org: Org,
) -> None:
    organization = org.organization
    delete = reverse("admin:organizations_organization_delete", args=[organization.pk])
    assert _operator_client().post(delete, {"post": "yes"}).status_code == 302
    event = AuditEvent.objects.get(action="admin.object.deleted")
    assert event.organization is None  # its own trail went with it
    assert event.target_id == str(organization.pk)
    assert event.target_label == organization.name
