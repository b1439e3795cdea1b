"""The registry of audit event types: each name declared once, with its message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    message: str  # formatted with the event's actor and target labels


_REGISTRY: dict[str, EventType] = {}


def register(name: str, message: str) -> EventType:
    if name in _REGISTRY:
        raise ValueError(f"Audit event type {name!r} is registered twice.")
    event_type = EventType(name, message)
    _REGISTRY[name] = event_type
    return event_type


def get(name: str) -> EventType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown audit event type {name!r}.") from None


ACCOUNT_SIGNED_UP = register("account.signed_up", "{actor} signed up")
ACCOUNT_SIGNED_IN = register("account.signed_in", "{actor} signed in")
ACCOUNT_SIGNED_OUT = register("account.signed_out", "{actor} signed out")
ACCOUNT_SIGN_IN_FAILED = register("account.sign_in_failed", "Failed sign-in for {target}")
ACCOUNT_PASSWORD_RESET = register("account.password_reset", "{actor} reset their password")
ORGANIZATION_CREATED = register("organization.created", "{actor} created organization {target}")
ORGANIZATION_UPDATED = register("organization.updated", "{actor} renamed organization {target}")
PROJECT_CREATED = register("projects.project.created", "{actor} created project {target}")
PROJECT_UPDATED = register("projects.project.updated", "{actor} updated project {target}")
PROJECT_DELETED = register("projects.project.deleted", "{actor} deleted project {target}")
BILLING_CONTACT_UPDATED = register("billing.contact.updated", "{actor} updated the billing contact")
ACCESS_DENIED = register("access.denied", "{actor} was denied {target}")
POLICY_ATTACHED = register("iam.policy.attached", "{actor} attached policy {target}")
POLICY_DETACHED = register("iam.policy.detached", "{actor} detached policy {target}")
POLICY_CREATED = register("iam.policy.created", "{actor} created policy {target}")
POLICY_UPDATED = register("iam.policy.updated", "{actor} updated policy {target}")
POLICY_DUPLICATED = register("iam.policy.duplicated", "{actor} duplicated a policy as {target}")
POLICY_DELETED = register("iam.policy.deleted", "{actor} deleted policy {target}")
POLICY_RULE_ADDED = register("iam.policy.rule_added", "{actor} added a rule to policy {target}")
POLICY_RULE_UPDATED = register(
    "iam.policy.rule_updated", "{actor} changed a rule of policy {target}"
)
POLICY_RULE_REMOVED = register(
    "iam.policy.rule_removed", "{actor} removed a rule from policy {target}"
)
POLICY_RULES_REORDERED = register(
    "iam.policy.rules_reordered", "{actor} reordered the rules of policy {target}"
)
GUARDRAIL_UPDATED = register(
    "iam.guardrail.updated", "{actor} changed the organization's guardrails"
)
