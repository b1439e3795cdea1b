"""Random sequences of console operations by random actors, mostly non-owners: after each
step, nobody holds a permission that neither an owner granted nor the step's actor held,
and the number of owners changed only through an owner (issue #10)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from organizations.models import Application, Group, Invitation, Membership
from organizations.services import groups as group_services
from organizations.services import invitations as invitation_services
from organizations.services import people as people_services
from policies.authz import principal_of
from policies.catalogue import ACTIONS, ORGANIZATION
from policies.evaluator import RequestFacts, decide
from policies.models import Policy, PolicyAttachment, Rule
from policies.selectors.rules import compile_rules_for
from policies.services import attachments as attachment_services
from policies.services import rules as rule_services
from tests.factories import (
    ApplicationFactory,
    GroupFactory,
    MembershipFactory,
    OrganizationFactory,
    PolicyFactory,
    ProjectFactory,
    RuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# What rules the random edits write: broad and narrow, allow and deny, org and projects.
PATTERNS = (
    ["*"],
    ["iam:*"],
    ["billing:*"],
    ["IAMReadOnly"],
    ["iam:policies:attach", "iam:groups:update"],
    ["organization:security:update"],
    ["iam:guardrails:update"],
)
PROJECT_PATTERNS = (["compute:*"], ["InstancesReadOnly"], ["*"])
_counter = itertools.count()


def _held(subject: Membership | Application, project_ids: list[str]) -> set[tuple[str, object]]:
    """Every (action, project or None) the evaluator allows `subject` now, as a request
    from nowhere without MFA (the facts services use without a request)."""
    principal = principal_of(subject)
    rules = compile_rules_for(subject)
    facts = RequestFacts(ip="", user_agent="", time=timezone.now(), mfa=False)
    held = set()
    for name, action in ACTIONS.items():
        places = [None] if action.level == ORGANIZATION else [None, *project_ids]
        for project_id in places:
            decision = decide(
                principal=principal, rules=rules, action=name, project_id=project_id, request=facts
            )
            if decision.allowed:
                held.add((name, project_id))
    return held


class Console(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        n = next(_counter)
        self.organization = OrganizationFactory(name=f"Stateful {n}")
        org = self.organization
        self.projects = [ProjectFactory(organization=org) for _ in range(2)]
        self.project_ids = [str(p.pk) for p in self.projects]
        self.owner = MembershipFactory(organization=org, is_owner=True)
        managed = {p.name: p for p in Policy.objects.filter(kind=Policy.Kind.MANAGED)}
        self.members = [MembershipFactory(organization=org) for _ in range(4)]
        # An IAM manager, an IAM manager with billing, a tech user, a read-only user.
        grants = [["IAMManager"], ["IAMManager", "BillingAccess"], ["TechAccess"], []]
        for member, names in zip(self.members, grants, strict=True):
            for name in names:
                PolicyAttachment.objects.create(
                    policy=managed[name], membership=member, organization=org
                )
        self.applications = [ApplicationFactory(organization=org) for _ in range(2)]
        self.groups = [GroupFactory(organization=org) for _ in range(2)]
        custom = []
        for patterns, effect in (
            (["*"], "allow"),
            (["billing:*"], "deny"),
            (["IAMReadOnly", "iam:policies:attach"], "allow"),
        ):
            policy = PolicyFactory(organization=org)
            RuleFactory(policy=policy, position=1, effect=effect, actions=patterns)
            custom.append(policy)
        everywhere = PolicyFactory(organization=org)
        RuleFactory(policy=everywhere, position=1, actions=["compute:*"], scope="all_projects")
        custom.append(everywhere)
        self.policies = custom + [managed[n] for n in ("BillingAccess", "IAMManager", "TechAccess")]
        PolicyAttachment.objects.create(policy=custom[1], group=self.groups[0], organization=org)
        self.actor: Membership | None = None
        self.before: dict[object, set[tuple[str, object]]] = {}
        self.owners = self._owner_count()

    # ------------------------------------------------------------------ helpers

    def _owner_count(self) -> int:
        return Membership.objects.filter(organization=self.organization, is_owner=True).count()

    def _principals(self) -> list[Membership | Application]:
        members = Membership.objects.filter(organization=self.organization).select_related(
            "user", "organization"
        )
        applications = Application.objects.filter(organization=self.organization).select_related(
            "organization"
        )
        return [*members, *applications]

    def _snapshot(self) -> dict[object, set[tuple[str, object]]]:
        return {p.pk: _held(p, self.project_ids) for p in self._principals()}

    def _act(self, actor_index: int, change: Callable[[Membership], object]) -> None:
        actor = ([self.owner, *self.members])[actor_index % (len(self.members) + 1)]
        actor = Membership.objects.select_related("user", "organization").get(pk=actor.pk)
        self.before = self._snapshot()
        self.actor_was_owner = actor.is_owner
        self.actor_held = self.before[actor.pk]
        self.owners = self._owner_count()
        # A refusal changes nothing: the invariants below hold all the same.
        with contextlib.suppress(ValidationError, PermissionDenied):
            change(actor)

    # ------------------------------------------------------------------- steps

    actors = st.integers(min_value=0, max_value=40)  # the owner is one actor in five

    @rule(actor=actors, policy=st.integers(0, 6), who=st.integers(0, 7))
    def attach(self, actor: int, policy: int, who: int) -> None:
        principal = [*self.members, *self.applications, *self.groups][who]
        self._act(
            actor,
            lambda a: attachment_services.policy_attach(
                policy=self.policies[policy], principal=principal, actor=a.user
            ),
        )

    @rule(actor=actors, policy=st.integers(0, 6), who=st.integers(0, 7))
    def detach(self, actor: int, policy: int, who: int) -> None:
        principal = [*self.members, *self.applications, *self.groups][who]
        self._act(
            actor,
            lambda a: attachment_services.policy_detach(
                policy=self.policies[policy], principal=principal, actor=a.user
            ),
        )

    @rule(actor=actors, group=st.integers(0, 1), who=st.integers(0, 5), add=st.booleans())
    def group_membership(self, actor: int, group: int, who: int, add: bool) -> None:
        g: Group = self.groups[group]
        principal = [*self.members, *self.applications][who]

        def change(a: Membership) -> None:
            if isinstance(principal, Membership):
                fn = group_services.group_add_member if add else group_services.group_remove_member
                fn(group=g, membership=principal, actor=a.user)
            else:
                fn = (
                    group_services.group_add_application
                    if add
                    else group_services.group_remove_application
                )
                fn(group=g, application=principal, actor=a.user)

        self._act(actor, change)

    @rule(
        actor=actors,
        policy=st.integers(0, 3),
        effect=st.sampled_from(["allow", "deny"]),
        patterns=st.sampled_from(PATTERNS),
        edit=st.booleans(),
    )
    def organization_rule(
        self, actor: int, policy: int, effect: str, patterns: list[str], edit: bool
    ) -> None:
        target = self.policies[policy]

        def change(a: Membership) -> None:
            existing = Rule.objects.filter(policy=target).order_by("position").first()
            values = {"effect": effect, "actions": patterns, "scope": "organization"}
            if edit and existing is not None:
                rule_services.rule_update(rule=existing, **values, actor=a.user)
            else:
                rule_services.rule_add(policy=target, **values, actor=a.user)

        self._act(actor, change)

    @rule(
        actor=actors,
        policy=st.integers(0, 3),
        effect=st.sampled_from(["allow", "deny"]),
        patterns=st.sampled_from(PROJECT_PATTERNS),
        chosen=st.sampled_from([None, 0, 1]),
    )
    def project_rule(
        self, actor: int, policy: int, effect: str, patterns: list[str], chosen: int | None
    ) -> None:
        target = self.policies[policy]
        scope = "all_projects" if chosen is None else "projects"
        projects = [] if chosen is None else [self.projects[chosen]]
        self._act(
            actor,
            lambda a: rule_services.rule_add(
                policy=target,
                effect=effect,
                actions=patterns,
                scope=scope,
                projects=projects,
                actor=a.user,
            ),
        )

    @rule(actor=actors, policy=st.integers(0, 3))
    def remove_rule(self, actor: int, policy: int) -> None:
        existing = Rule.objects.filter(policy=self.policies[policy]).order_by("position").first()
        if existing is not None:
            self._act(actor, lambda a: rule_services.rule_remove(rule=existing, actor=a.user))

    @rule(
        actor=actors,
        role=st.sampled_from(["", "owner", "tech", "billing", "readonly"]),
        group=st.sampled_from([None, 0, 1]),
    )
    def invite_and_accept(self, actor: int, role: str, group: int | None) -> None:
        def change(a: Membership) -> None:
            user = UserFactory()
            issued = invitation_services.invitations_create(
                organization=self.organization,
                actor=a,
                emails=[user.email],
                role=role,
                groups=[] if group is None else [self.groups[group]],
            )
            invitation = Invitation.objects.get(pk=issued[0].invitation.pk)
            invitation_services.invitation_accept(invitation=invitation, user=user)

        self._act(actor, change)

    @rule(actor=actors, who=st.integers(0, 3))
    def make_owner(self, actor: int, who: int) -> None:
        self._act(
            actor,
            lambda a: people_services.owner_grant(membership=self.members[who], actor=a),
        )

    # -------------------------------------------------------------- invariants

    @invariant()
    def nobody_gains_what_a_non_owner_actor_did_not_hold(self) -> None:
        if not self.before or self.actor_was_owner:
            return
        after = self._snapshot()
        for pk, held in after.items():
            gained = held - self.before.get(pk, set())
            beyond = gained - self.actor_held
            assert not beyond, f"principal {pk} gained {sorted(map(str, beyond))[:5]}"
        self.before = {}

    @invariant()
    def owners_change_only_through_an_owner(self) -> None:
        if self._owner_count() != self.owners:
            assert self.actor_was_owner
            self.owners = self._owner_count()


def test_no_sequence_of_console_changes_escalates(db: None) -> None:
    run_state_machine_as_test(
        Console,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
