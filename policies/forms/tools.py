"""Forms of the IAM tools: the simulator."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from django import forms
from django.utils import timezone

from organizations.models import Application, Membership, Organization, Project
from organizations.selectors.organizations import members_of
from organizations.selectors.projects import projects_of
from policies import catalogue
from policies.evaluator import RequestFacts

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _member_label(membership: Membership) -> str:
    flags = (("owner", membership.is_owner), ("suspended", not membership.is_active))
    notes = [note for note, on in flags if on]
    return f"{membership.user.email} ({', '.join(notes)})" if notes else membership.user.email


def _with_kind(value: Any) -> Any:
    # Links from a user's page pass the bare membership id.
    if isinstance(value, str) and value and ":" not in value:
        return f"user:{value}"
    return value


class PrincipalChoiceField(forms.ChoiceField):
    """A user (`user:<membership id>`, or a bare membership id) or an application
    (`application:<id>`) of the organization; cleans to the Membership or Application."""

    default_error_messages = {
        "invalid_choice": "Choose a user or an application of this organization.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=(), **kwargs)
        self.by_value: dict[str, Membership | Application] = {}

    def set_principals(self, organization: Organization) -> None:
        members = list(members_of(organization))
        applications = list(organization.applications.order_by("name"))
        self.by_value = {f"user:{m.pk}": m for m in members}
        self.by_value.update({f"application:{a.pk}": a for a in applications})
        self.choices = [
            ("", "Choose a user or an application…"),
            ("Users", [(f"user:{m.pk}", _member_label(m)) for m in members]),
            ("Applications", [(f"application:{a.pk}", a.name) for a in applications]),
        ]

    def to_python(self, value: Any) -> str:
        return _with_kind(super().to_python(value))

    def valid_value(self, value: str) -> bool:
        return value in self.by_value

    def clean(self, value: Any) -> Membership | Application | None:
        return self.by_value.get(super().clean(value))

    def prepare_value(self, value: Any) -> Any:
        return _with_kind(value)


class UTCDateTimeField(forms.DateTimeField):
    """A datetime-local value read as UTC, whatever the active time zone."""

    def to_python(self, value: Any) -> dt.datetime | None:
        with timezone.override(dt.UTC):
            return super().to_python(value)


def action_choices() -> list[tuple[str, Any]]:
    """The catalogue's actions grouped by service, for a select with optgroups."""
    groups: list[tuple[str, Any]] = [("", "Choose an action…")]
    for key, service in catalogue.SERVICES.items():
        actions = catalogue.actions_for_service(key)
        groups.append((service.name, [(a.name, f"{a.name} ({a.level})") for a in actions]))
    return groups


class SimulatorForm(forms.Form):
    """Who asks to do what, where, and in which request context.

    Read with GET so a simulation is a link. The principal and project are looked up
    within `organization` only: another organization's ids are "not a valid choice".
    """

    principal = PrincipalChoiceField()
    action = forms.ChoiceField(choices=action_choices)
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        empty_label="No project (organization-level action)",
        help_text="Required for project-level actions.",
    )
    ip = forms.CharField(
        label="Source IP", required=False, max_length=45, help_text="Empty: no address."
    )
    user_agent = forms.CharField(label="User agent", required=False, max_length=512)
    time = UTCDateTimeField(
        label="Time (UTC)",
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        help_text="Empty: now.",
    )
    mfa = forms.BooleanField(label="Signed in with MFA", required=False)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["principal"].set_principals(organization)
        self.fields["project"].queryset = projects_of(organization).order_by("name")

    def clean_ip(self) -> str:
        value = self.cleaned_data["ip"].strip()
        if value:
            try:
                value = str(ipaddress.ip_address(value))
            except ValueError:
                raise forms.ValidationError(
                    f'"{value}" is not an IPv4 or IPv6 address.', code="invalid_ip"
                ) from None
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = catalogue.ACTIONS.get(data.get("action", ""))
        if action is not None and "project" not in self.errors:
            project = data.get("project")
            if action.level == catalogue.PROJECT and project is None:
                self.add_error(
                    "project", f"{action.name} is a project-level action: choose a project."
                )
            elif action.level == catalogue.ORGANIZATION and project is not None:
                self.add_error(
                    "project",
                    f"{action.name} is an organization-level action: leave the project empty.",
                )
        return data

    def request_facts(self) -> RequestFacts:
        """The request context to decide with; call after `is_valid()`."""
        data = self.cleaned_data
        return RequestFacts(
            ip=data["ip"],
            user_agent=data["user_agent"],
            time=data["time"] or timezone.now(),
            mfa=data["mfa"],
        )
