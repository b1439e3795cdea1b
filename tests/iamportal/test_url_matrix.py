"""Every guarded URL, requested as each persona: the role matrix of the whole portal.

For each URL pattern whose view requires an action (found by walking the URLconf, see
tests/urls.py), as the owner, tech, billing and read-only users and a user of another
organization:

- the outsider gets 404 (the organization does not exist for them);
- a member gets 403 exactly when the evaluator denies them the view's action (computed
  with the same code the guard uses, not written by hand), and the 403 page names it;
- otherwise the page works: not 403, 404 or 500 (200, a redirect, 400 on a bad query,
  or 405 for a POST-only view);
- POST-only views are also POSTed with no data: 403 when denied, never a 500.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from policies.authz import principal_of, rules_for
from policies.catalogue import RESOURCE_TYPES
from policies.evaluator import Decision, RequestFacts, decide
from tests.conftest import Org
from tests.urls import GuardedURL, UnknownKwarg, World, guarded_urls, kwargs_for, make_world

MEMBERS = ("readonly", "billing", "tech", "owner")
GUARDED = guarded_urls()


def _decision(org: Org, persona: str, url: GuardedURL, kwargs: dict[str, object]) -> Decision:
    """What the guard will decide for `persona` (the test client's request facts)."""
    membership = getattr(org, persona)
    action, project_id = url.action_for(kwargs)
    return decide(
        principal=principal_of(membership),
        rules=rules_for(membership),
        action=action,
        project_id=str(project_id) if project_id else None,
        request=RequestFacts(ip="127.0.0.1", user_agent="", time=timezone.now()),
    )


def _allowed(org: Org, persona: str, url: GuardedURL, world: World, decision: Decision) -> bool:
    if decision.allowed:
        return True
    # API key views also let the key's bearer in when no policy says either way.
    bearer = world.api_key.bearer_membership_id == getattr(org, persona).pk
    return url.bearer_allowed and bearer and decision.reason == "implicit_deny"


def _client(org: Org, persona: str) -> Client:
    return org.client_for(persona)


def test_the_matrix_covers_the_portal() -> None:
    names = {url.name for url in GUARDED}
    # A few URLs of each area, so an empty walk cannot pass.
    for name in (
        "organizations:dashboard",
        "organizations:project_detail",
        "organizations:invoice_detail",
        "policies:policy_detail",
        "policies:rule_update",
        "iamtools:simulator",
        "organizations:resource_detail",
    ):
        assert name in names
    assert any(url.project_kwarg for url in GUARDED)
    # One resource list per catalogue type, each guarded by its own `list` action.
    assert {url.action for url in GUARDED if url.name == "organizations:resource_list"} == {
        f"{key}:list" for key in RESOURCE_TYPES
    }


def test_a_new_kwarg_name_fails_with_where_to_add_it() -> None:
    url = GuardedURL(
        route="o/<uuid:org_id>/widgets/<uuid:widget_id>/",
        name="organizations:widget_detail",
        action="iam:users:list",
        project_kwarg=None,
        bearer_allowed=False,
        kwarg_names=("widget_id",),
    )
    with pytest.raises(UnknownKwarg, match=r"'widget_id'.*Add it to KWARGS in tests/urls.py"):
        kwargs_for(url, world=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", GUARDED, ids=lambda url: url.name)
def test_guarded_url_answers_each_persona_as_the_evaluator_decides(
    url: GuardedURL, org: Org
) -> None:
    world = make_world(org.organization, actor=org.owner)
    try:
        kwargs = kwargs_for(url, world)
    except UnknownKwarg as error:
        pytest.fail(str(error))
    path = url.path(kwargs)
    action, _ = url.action_for(kwargs)
    allowed = {
        persona: _allowed(org, persona, url, world, _decision(org, persona, url, kwargs))
        for persona in MEMBERS
    }
    problems: list[str] = []

    status = _client(org, "outsider").get(path).status_code
    if status != 404:
        problems.append(f"outsider: GET {status}, expected 404")

    post_only = False
    for persona in MEMBERS:
        response = _client(org, persona).get(path)
        status = response.status_code
        if not allowed[persona]:
            if status != 403:
                problems.append(f"{persona}: GET {status}, expected 403 ({action} denied)")
            elif action not in response.content.decode():
                problems.append(f"{persona}: the 403 page does not name {action}")
        elif status in (403, 404, 500):
            problems.append(f"{persona}: GET {status}, expected the page ({action} allowed)")
        post_only = post_only or (allowed[persona] and status == 405)

    if post_only:
        status = _client(org, "outsider").post(path, {}).status_code
        if status != 404:
            problems.append(f"outsider: POST {status}, expected 404")
        # Refused POSTs first: an allowed one may change the objects (delete, suspend).
        for persona in sorted(MEMBERS, key=lambda persona: allowed[persona]):
            status = _client(org, persona).post(path, {}).status_code
            if not allowed[persona] and status != 403:
                problems.append(f"{persona}: POST {status}, expected 403 ({action} denied)")
            elif status >= 500:
                problems.append(f"{persona}: POST {status}")

    assert not problems, f"{path} [{url.name}, {action}]:\n" + "\n".join(problems)


# Field names the portal's forms use, each given a value no form accepts.
JUNK = {
    name: "not-a-valid-value\x00"
    for name in [
        "add",
        "add_user",
        "remove_user",
        "add_application",
        "remove_application",
        "remove",
        "group",
        "policy",
        "membership",
        "application",
        "project",
        "principal",
        "action",
        "kind",
        "confirm",
        "confirm_name",
        "name",
        "description",
        "emails",
        "role",
        "groups",
        "effect",
        "actions",
        "scope",
        "projects",
        "condition",
        "ip",
        "time",
        "user_agent",
        "expires_on",
        "default_project",
        "bearer",
        "code",
        "password",
        "next",
        "status",
        "q",
        "group_q",
        "page",
        "mfa_grace_days",
        "login_failure_limit",
        "session_max_age_hours",
        "api_key_max_lifetime_days",
        "invitation_domains",
        "audit_retention_days",
        "position",
        "direction",
        "labels",
    ]
}


@pytest.mark.parametrize("url", GUARDED, ids=lambda url: url.name)
def test_junk_input_is_refused_with_a_message_never_a_500(url: GuardedURL, org: Org) -> None:
    """Every guarded URL, as the owner (allowed everything), with a malformed value in
    every field the portal's forms know, in the query string and in a POST."""
    world = make_world(org.organization, actor=org.owner)
    path = url.path(kwargs_for(url, world))
    client = _client(org, "owner")
    get = client.get(path, JUNK).status_code
    post = client.post(path, JUNK).status_code
    assert get < 500 and post < 500, f"{url.name}: GET {get}, POST {post}"
