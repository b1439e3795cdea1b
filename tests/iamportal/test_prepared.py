"""`PreparedLookup` builds the same objects as iterating its queryset, in one query, with
the SQL compiled once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from iamportal.prepared import PreparedLookup
from organizations.models import APIKey
from tests.api.conftest import key_token
from tests.conftest import Org

pytestmark = pytest.mark.django_db

RELATED = ("organization", "bearer_membership__user", "bearer_application")
lookup: PreparedLookup[APIKey] = PreparedLookup(
    lambda access_key: APIKey.objects.select_related(*RELATED).filter(access_key=access_key)
)


def _fields(instance: Model | None) -> dict[str, Any] | None:
    if instance is None:
        return None
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


def test_the_objects_equal_the_querysets(org: Org, django_assert_num_queries: Any) -> None:
    key_token(org.tech, org.tech)
    expected = APIKey.objects.select_related(*RELATED).get(bearer_membership=org.tech)
    with django_assert_num_queries(1):
        found = lookup(expected.access_key)
        # Its related objects came with it: reading them costs nothing more.
        related = (found.organization, found.bearer_membership.user, found.bearer_application)
    assert found is not None and found._state.adding is False and found._state.db == "default"
    assert _fields(found) == _fields(expected)
    assert _fields(related[0]) == _fields(expected.organization)
    assert _fields(related[1]) == _fields(expected.bearer_membership.user)
    assert related[2] is None
    assert _fields(found.bearer_membership) == _fields(expected.bearer_membership)


def test_each_call_builds_fresh_objects(org: Org) -> None:
    key_token(org.tech, org.tech)
    access_key = APIKey.objects.get().access_key
    first, second = lookup(access_key), lookup(access_key)
    assert first is not second and first.organization is not second.organization


def test_no_row_is_none(org: Org) -> None:
    assert lookup("IAMnothing") is None


def test_the_queryset_must_use_the_value_once() -> None:
    broken: PreparedLookup[APIKey] = PreparedLookup(lambda value: APIKey.objects.all())
    with pytest.raises(ValueError, match="exactly once"):
        broken("x")


def test_the_query_log_shows_the_statement_with_its_value(org: Org) -> None:
    with CaptureQueriesContext(connection) as queries:
        lookup("IAMlogged")
    (logged,) = queries.captured_queries
    assert "IAMlogged" in logged["sql"] and "organizations_apikey" in logged["sql"]
