"""The registry of audit event types: each name declared once, with its message.

Names are `service.resource.verb` with the verb in the past tense
(`iam.group.policy_attached`, `auth.login.failed`); the service groups the trail's
action filter. Each type says which result it records by default (`success`, `denied`,
`failed`); `audit.services.record` may override it per event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RESULTS = ("success", "denied", "failed")
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")

# Human titles of the services that appear as groups in the trail's action filter.
SERVICE_TITLES = {
    "auth": "Sign-in and accounts",
    "authz": "Authorization",
    "iam": "IAM",
    "organization": "Organization",
    "projects": "Projects",
    "billing": "Billing",
    "audit": "Audit trail",
    "scim": "SCIM provisioning",
    "federation": "Single sign-on",
}


@dataclass(frozen=True)
class EventType:
    name: str
    message: str  # formatted with the event's actor and target labels
    result: str = "success"

    @property
    def service(self) -> str:
        return self.name.split(".", 1)[0]


_REGISTRY: dict[str, EventType] = {}


def register(name: str, message: str, *, result: str = "success") -> EventType:
    if not _NAME.match(name):
        raise ValueError(f"Audit event type {name!r} is not `service.resource.verb`.")
    if result not in RESULTS:
        raise ValueError(f"Audit event type {name!r}: result must be one of {RESULTS}.")
    if name in _REGISTRY:
        raise ValueError(f"Audit event type {name!r} is registered twice.")
    event_type = EventType(name, message, result)
    _REGISTRY[name] = event_type
    return event_type


def get(name: str) -> EventType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown audit event type {name!r}.") from None


def all_types() -> list[EventType]:
    """Every registered type, sorted by name (so grouped by service)."""
    return sorted(_REGISTRY.values(), key=lambda t: t.name)


def service_title(service: str) -> str:
    return SERVICE_TITLES.get(service, service.capitalize())


ACCOUNT_SIGNED_UP = register("auth.account.signed_up", "{actor} signed up")
ACCOUNT_SIGNED_IN = register("auth.login.succeeded", "{actor} signed in")
ACCOUNT_SIGNED_OUT = register("auth.logout.succeeded", "{actor} signed out")
ACCOUNT_SIGN_IN_FAILED = register(
    "auth.login.failed", "Failed sign-in for {target}", result="failed"
)
ACCOUNT_PASSWORD_RESET = register("auth.password.reset", "{actor} reset their password")
ORGANIZATION_CREATED = register(
    "organization.organization.created", "{actor} created organization {target}"
)
ORGANIZATION_UPDATED = register(
    "organization.organization.updated", "{actor} renamed organization {target}"
)
PROJECT_CREATED = register("projects.project.created", "{actor} created project {target}")
PROJECT_UPDATED = register("projects.project.updated", "{actor} updated project {target}")
PROJECT_DELETED = register("projects.project.deleted", "{actor} deleted project {target}")
BILLING_CONTACT_UPDATED = register("billing.contact.updated", "{actor} updated the billing contact")
ACCESS_DENIED = register("authz.access.denied", "{actor} was denied {target}", result="denied")
SELF_LOCKOUT_CONFIRMED = register(
    "authz.self_lockout.confirmed", "{actor} confirmed a change that takes away their {target}"
)
DELEGATION_REFUSED = register(
    "authz.delegation.refused",
    "{actor} was refused a change granting {target} more than they hold",
    result="denied",
)
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
POLICY_RESOURCE_REMOVED = register(
    "iam.policy.resource_removed",
    "{actor} deleted a resource named by the rules of policy {target}",
)
POLICY_RESTORED = register(
    "iam.policy.restored", "{actor} restored an earlier version of policy {target}"
)
GUARDRAIL_UPDATED = register(
    "iam.guardrail.updated", "{actor} changed the organization's guardrails"
)

# --- principals: invitations, users, ownership, groups
INVITATION_CREATED = register("iam.invitation.created", "{actor} invited {target}")
INVITATION_RESENT = register("iam.invitation.resent", "{actor} resent the invitation of {target}")
INVITATION_REVOKED = register(
    "iam.invitation.revoked", "{actor} revoked the invitation of {target}"
)
INVITATION_ACCEPTED = register("iam.invitation.accepted", "{actor} accepted an invitation")
USER_CREATED = register("iam.user.created", "{actor} created member {target}")
USER_SUSPENDED = register("iam.user.suspended", "{actor} suspended {target}")
USER_REACTIVATED = register("iam.user.reactivated", "{actor} reactivated {target}")
USER_REMOVED = register("iam.user.removed", "{actor} removed {target}")
USER_UPDATED = register("iam.user.updated", "{actor} updated user {target}")
USER_LEFT = register("iam.user.left", "{actor} left the organization")
USER_PASSWORD_LINK_SENT = register(
    "iam.user.password_link_sent", "{actor} sent a password link to {target}"
)
USER_OWNER_GRANTED = register("iam.user.owner_granted", "{actor} made {target} an owner")
USER_OWNER_STEPPED_DOWN = register(
    "iam.user.owner_stepped_down", "{actor} stepped down as an owner"
)
GROUP_CREATED = register("iam.group.created", "{actor} created group {target}")
GROUP_UPDATED = register("iam.group.updated", "{actor} updated group {target}")
GROUP_DELETED = register("iam.group.deleted", "{actor} deleted group {target}")
GROUP_MEMBER_ADDED = register("iam.group.member_added", "{actor} added a user to group {target}")
GROUP_MEMBER_REMOVED = register(
    "iam.group.member_removed", "{actor} removed a user from group {target}"
)

# --- applications and API keys
APPLICATION_CREATED = register("iam.application.created", "{actor} created application {target}")
APPLICATION_UPDATED = register("iam.application.updated", "{actor} updated application {target}")
APPLICATION_DELETED = register("iam.application.deleted", "{actor} deleted application {target}")
API_KEY_CREATED = register("iam.api_key.created", "{actor} created API key {target}")
API_KEY_DELETED = register("iam.api_key.deleted", "{actor} revoked API key {target}")
API_KEY_DISABLED = register("iam.api_key.disabled", "{actor} disabled API key {target}")
API_KEY_ENABLED = register("iam.api_key.enabled", "{actor} enabled API key {target}")
GROUP_APPLICATION_ADDED = register(
    "iam.group.application_added", "{actor} added an application to group {target}"
)
GROUP_APPLICATION_REMOVED = register(
    "iam.group.application_removed", "{actor} removed an application from group {target}"
)

# --- SCIM provisioning (its writes to users and groups record the iam.* events above)
SCIM_TOKEN_CREATED = register("scim.token.created", "{actor} created SCIM token {target}")
SCIM_TOKEN_REVOKED = register("scim.token.revoked", "{actor} revoked SCIM token {target}")

# --- audit trail itself
AUDIT_EXPORTED = register("audit.trail.exported", "{actor} exported the audit trail ({target})")
AUDIT_VERIFIED = register("audit.trail.verified", "{actor} verified the audit trail: {target}")
AUDIT_PURGED = register("audit.trail.purged", "Retention purged {target}")

# --- MFA and account security
AUTH_LOGIN_LOCKED_OUT = register(
    "auth.login.locked_out",
    "Sign-in refused for {target}: too many failed attempts",
    result="denied",
)
AUTH_MFA_ENROLLED = register("auth.mfa.enrolled", "{actor} set up an authenticator app")
AUTH_MFA_REMOVED = register("auth.mfa.removed", "{actor} removed their authenticator app")
AUTH_MFA_BACKUP_CODES_REGENERATED = register(
    "auth.mfa.backup_codes_regenerated", "{actor} generated new backup codes"
)
AUTH_MFA_BACKUP_CODE_USED = register("auth.mfa.backup_code_used", "{actor} used a backup code")
AUTH_MFA_FAILED = register(
    "auth.mfa.failed", "Wrong authentication code for {target}", result="failed"
)
AUTH_SESSION_ENDED = register("auth.session.ended", "{actor} ended a session")
AUTH_SESSIONS_ENDED = register("auth.session.others_ended", "{actor} ended their other sessions")
IAM_USER_MFA_RESET = register("iam.user.mfa_reset", "{actor} reset the MFA of {target}")
IAM_USER_MFA_UNLOCKED = register("iam.user.mfa_unlocked", "{actor} unlocked {target} to set up MFA")
ORGANIZATION_SECURITY_UPDATED = register(
    "organization.security.updated", "{actor} changed the security settings of {target}"
)

# --- operators' edits in the Django admin
ADMIN_OBJECT_CREATED = register("admin.object.created", "Operator {actor} created {target}")
ADMIN_OBJECT_UPDATED = register("admin.object.updated", "Operator {actor} changed {target}")
ADMIN_OBJECT_DELETED = register("admin.object.deleted", "Operator {actor} deleted {target}")

# --- resources registered in projects by the platform's services (#14)
RESOURCE_CREATED = register("projects.resource.created", "{actor} registered resource {target}")
RESOURCE_UPDATED = register("projects.resource.updated", "{actor} updated resource {target}")
RESOURCE_DELETED = register("projects.resource.deleted", "{actor} deleted resource {target}")

# --- "view as": an IAM administrator reading the console as another principal (#16)
VIEW_AS_STARTED = register(
    "iam.view_as.started", "{actor} started viewing the console as {target} (read-only)"
)
VIEW_AS_STOPPED = register("iam.view_as.stopped", "{actor} stopped viewing the console as {target}")

# --- single sign-on: organizations' identity providers (#17)
IDP_CREATED = register("federation.provider.created", "{actor} added identity provider {target}")
IDP_UPDATED = register("federation.provider.updated", "{actor} changed identity provider {target}")
IDP_DELETED = register("federation.provider.deleted", "{actor} removed identity provider {target}")
IDP_TESTED = register("federation.provider.tested", "{actor} tested identity provider {target}")
IDP_DOMAIN_VERIFIED = register(
    "federation.domain.verified", "{actor} verified an email domain of {target}"
)
IDP_DOMAIN_VERIFICATION_FAILED = register(
    "federation.domain.verification_failed",
    "{actor} could not verify an email domain of {target}",
    result="failed",
)
IDP_CLAIM_RULE_ADDED = register(
    "federation.claim_rule.added", "{actor} added a claim rule to {target}"
)
IDP_CLAIM_RULE_REMOVED = register(
    "federation.claim_rule.removed", "{actor} removed a claim rule of {target}"
)
IDP_CLAIM_RULE_APPLIED = register(
    "federation.claim_rule.applied", "A claim of {actor} changed their groups: {target}"
)
IDP_CLAIM_RULE_REFUSED = register(
    "federation.claim_rule.refused",
    "A claim rule could not change the groups of {actor}: {target}",
    result="denied",
)
SSO_REQUIRED_UPDATED = register(
    "federation.sso.required_updated", "{actor} changed single sign-on only for {target}"
)
SSO_SIGNED_IN = register("federation.sso.signed_in", "{actor} signed in through {target}")
SSO_ACCOUNT_CREATED = register(
    "federation.sso.account_created", "{actor} was created at first sign-in through {target}"
)
SSO_ACCOUNT_LINKED = register(
    "federation.sso.account_linked", "{actor} linked their account to {target}"
)
SSO_REFUSED = register(
    "federation.sso.refused", "Single sign-on through {target} refused", result="denied"
)
SSO_PASSWORD_REFUSED = register(
    "federation.sso.password_refused",
    "Password sign-in refused for {target}: the organization requires single sign-on",
    result="denied",
)
