"""Every guarded URL of the project, and how tests fill in its kwargs.

`guarded_urls()` walks the URLconf and returns each pattern whose view declares an action
(`@requires(...)`, or a guard built like it: the view carries `iam_access == "action"`
and `iam_action`). `kwargs_for(url, world)` builds the URL's kwargs from objects made
once per test (`World`), by kwarg name.

A resource's URL (`iam_resource_verb` on the view, organizations.views.resources) decides
its resource's type's verb in the resource's project: `GuardedURL.action_for` says which.

Adding a URL with a new kwarg name? Add one line to `KWARGS` below: the name and a
function of `World` returning its value (add the object to `World` and `make_world` if
it is a new kind). When the name means different things in different URLs, add an entry
to `OVERRIDES` for the URL's name instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audit import events
from audit.services import record
from federation import services as federation_services
from federation.models import ClaimRule, IdentityProvider
from organizations.models import (
    APIKey,
    Application,
    Group,
    Invitation,
    Invoice,
    Membership,
    Organization,
    Project,
    Resource,
)
from policies.catalogue import RESOURCE_TYPES
from policies.models import Policy, PolicyAttachment, Rule
from policies.services.versions import policy_version_record
from tests.factories import (
    APIKeyFactory,
    ApplicationFactory,
    GroupFactory,
    InvoiceFactory,
    MembershipFactory,
    PolicyFactory,
    ProjectFactory,
    ResourceFactory,
    RuleFactory,
)

# The admin guards itself (staff, OTP); policies.checks exempts it the same way.
SKIPPED_NAMESPACES = {"admin"}
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class GuardedURL:
    """One URL pattern whose view requires a catalogue action."""

    route: str  # "o/<uuid:org_id>/projects/<uuid:project_id>/"
    name: str  # "organizations:project_detail" (or the route when unnamed)
    action: str | None
    project_kwarg: str | None  # the kwarg naming the project of a project-level action
    bearer_allowed: bool  # an API key's bearer passes an implicit deny (API key views)
    kwarg_names: tuple[str, ...]
    # A resource's URL: the verb its guard decides for the resource's type (`action` is None).
    resource_verb: str | None = None

    def action_for(self, kwargs: dict[str, Any]) -> tuple[str, Any]:
        """The action the guard decides for `kwargs`, and the project id it decides it in."""
        if self.resource_verb is not None:
            resource = Resource.objects.get(pk=kwargs["resource_id"])
            return RESOURCE_TYPES[resource.type].action(self.resource_verb), resource.project_id
        assert self.action is not None
        return self.action, kwargs[self.project_kwarg] if self.project_kwarg else None

    def path(self, kwargs: dict[str, Any]) -> str:
        """The URL path with `kwargs` filled in."""
        return "/" + _PARAMETER.sub(lambda m: str(kwargs[m["name"]]), self.route)

    def __str__(self) -> str:
        return f"{self.name} ({self.route})"


def _walk(
    resolver: URLResolver, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str, URLPattern]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            if inner in SKIPPED_NAMESPACES:
                continue
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        else:
            route = prefix + str(entry.pattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield route, name or route, entry


def _project_kwarg(view: Callable[..., Any]) -> str | None:
    """The `project_kwarg` given to `@requires`, which the guard records on the view."""
    return getattr(view, "iam_project_kwarg", None)


def guarded_urls() -> list[GuardedURL]:
    """Every URL pattern whose view requires an action, in URLconf order."""
    found = []
    for route, name, pattern in _walk(get_resolver()):
        view = pattern.callback
        if getattr(view, "iam_access", None) != "action":
            continue
        if "(?P<" in route or "^" in route:
            raise AssertionError(f"{name}: regex routes are not supported by tests/urls.py")
        found.append(
            GuardedURL(
                route=route,
                name=name,
                action=view.iam_action,
                project_kwarg=_project_kwarg(view),
                bearer_allowed=bool(getattr(view, "iam_bearer_allowed", False)),
                kwarg_names=tuple(m["name"] for m in _PARAMETER.finditer(route)),
                resource_verb=getattr(view, "iam_resource_verb", None),
            )
        )
    return found


# ------------------------------------------------------------------- the objects


@dataclass
class World:
    """One object of each kind a URL can point at, all in `organization`.

    `subject` is a plain member that URLs about "a user" point at (not a persona, so
    suspending or removing it does not change who is asking). The policy is attached to
    the subject, the group and the application, so detach URLs find an attachment.
    """

    organization: Organization
    project: Project
    resource: Resource
    invoice: Invoice
    subject: Membership
    group: Group
    application: Application
    api_key: APIKey
    policy: Policy
    rule: Rule
    invitation: Invitation
    event_public_id: Any
    identity_provider: IdentityProvider
    claim_rule: ClaimRule


def make_world(organization: Organization, *, actor: Membership) -> World:
    project = ProjectFactory(organization=organization, name="web")
    subject = MembershipFactory(organization=organization)
    group = GroupFactory(organization=organization)
    group.members.add(subject)
    application = ApplicationFactory(organization=organization)
    api_key = APIKeyFactory(bearer_application=application)
    policy = PolicyFactory(organization=organization)
    rule = RuleFactory(policy=policy, position=1)
    policy_version_record(policy, actor.user, "created")  # version 1, for the versions' URLs
    for principal in ({"membership": subject}, {"group": group}, {"application": application}):
        PolicyAttachment.objects.create(policy=policy, organization=organization, **principal)
    invitation = Invitation.objects.create(
        organization=organization,
        email="newcomer@example.com",
        token_hash=hashlib.sha256(b"tests/urls.py invitation").hexdigest(),
        expires_at=timezone.now() + dt.timedelta(days=7),
        invited_by=actor.user,
    )
    event = record(
        action=events.PROJECT_CREATED, organization=organization, actor=actor.user, target=project
    )
    provider = federation_services.provider_create(
        organization=organization,
        actor=actor.user,
        name="Acme SSO",
        issuer="https://idp.example.test",
        client_id="console",
        client_secret="tests/urls.py secret",
        domains=[f"{organization.pk.hex}.example.test"],  # a domain has one provider
    )
    claim_rule = ClaimRule.objects.create(provider=provider, claim="groups", value="x", group=group)
    return World(
        organization=organization,
        project=project,
        resource=ResourceFactory(project=project, type="compute:instances", tags={"team": "web"}),
        invoice=InvoiceFactory(organization=organization),
        subject=subject,
        group=group,
        application=application,
        api_key=api_key,
        policy=policy,
        rule=rule,
        invitation=invitation,
        event_public_id=event.public_id,
        identity_provider=provider,
        claim_rule=claim_rule,
    )


# ------------------------------------------------------------------------ kwargs

KWARGS: dict[str, Callable[[World], Any]] = {
    "org_id": lambda w: w.organization.pk,
    "project_id": lambda w: w.project.pk,
    "resource_id": lambda w: w.resource.pk,
    "invoice_id": lambda w: w.invoice.pk,
    "membership_id": lambda w: w.subject.pk,
    "group_id": lambda w: w.group.pk,
    "application_id": lambda w: w.application.pk,
    "api_key_id": lambda w: w.api_key.pk,
    "key_id": lambda w: w.api_key.pk,
    "policy_id": lambda w: w.policy.pk,
    "rule_id": lambda w: w.rule.pk,
    "number": lambda w: 1,  # a version of the world's policy
    "invitation_id": lambda w: w.invitation.pk,
    "event_id": lambda w: w.event_public_id,
    # The attached-policies panel of a principal: `kind` and its id go together.
    "kind": lambda w: "group",
    "principal_id": lambda w: w.group.pk,
    "fmt": lambda w: "csv",
    "provider_id": lambda w: w.identity_provider.pk,
    "domain_id": lambda w: w.identity_provider.domains.get().pk,
}

# Kwargs whose meaning depends on the URL, by URL name.
OVERRIDES: dict[str, dict[str, Callable[[World], Any]]] = {
    # Without `kind`, the principal is a user, by membership id.
    "policies:policy_detach": {"principal_id": lambda w: w.subject.pk},
    # A claim rule of the world's identity provider, not a policy's rule.
    "federation:claim_rule_remove": {"rule_id": lambda w: w.claim_rule.pk},
}


class UnknownKwarg(LookupError):
    """A URL has a kwarg tests/urls.py cannot fill in."""


def kwargs_for(url: GuardedURL, world: World) -> dict[str, Any]:
    """The kwargs of `url`, pointing at `world`'s objects; `UnknownKwarg` for a new name."""
    overrides = OVERRIDES.get(url.name, {})
    kwargs = {}
    for name in url.kwarg_names:
        build = overrides.get(name) or KWARGS.get(name)
        if build is None:
            raise UnknownKwarg(
                f"URL {url} has the kwarg {name!r}, which tests/urls.py does not know. "
                f"Add it to KWARGS in tests/urls.py: {name!r}: lambda w: <the value>, "
                "with the object in World/make_world if it is a new kind (or an entry in "
                "OVERRIDES if the name means something else in this URL)."
            )
        kwargs[name] = build(world)
    return kwargs
