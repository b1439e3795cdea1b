"""Forms of the IAM tools: the simulator, and the resource a question may be about (the
simulator's and effective permissions')."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from organizations.forms.tags import BaseTagsFormSet, tags_formset
from organizations.models import Application, Membership, Organization, Project, Resource
from organizations.selectors.organizations import members_of
from organizations.selectors.projects import projects_of
from organizations.tags import check_tags
from policies import catalogue
from policies.authz import resource_facts
from policies.evaluator import RequestFacts, ResourceFacts
from policies.selectors.tools import resource_in, wrong_action_for

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


def resource_type_choices() -> list[tuple[str, str]]:
    return [("", "None"), *((key, t.singular) for key, t in catalogue.RESOURCE_TYPES.items())]


class ResourceQuestionForm(forms.Form):
    """The resource a question is about, if any: a registered one (`resource`, its id,
    picked by searching), or one not registered yet: its type, project and tags (key /
    value rows, the principals' tags editor). Lookups stay within `organization`: another
    organization's resource is a form error. After `is_valid()`, `resource_facts()`.
    """

    resource = forms.CharField(label="Registered resource", required=False, max_length=64)
    resource_type = forms.ChoiceField(
        label="Resource type",
        choices=resource_type_choices,
        required=False,
        help_text="For a resource not registered yet: its type, project and tags.",
    )
    project = forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        empty_label="No project",
    )
    # The fields the resource picker renders itself (not in the form's plain field list).
    PICKER_FIELDS = ("resource", "resource_type")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["project"].queryset = projects_of(organization).order_by("name")
        data = self.data if self.is_bound else None
        # Without the rows' management data (a link), no tags were typed in.
        has_rows = data is not None and "tags-TOTAL_FORMS" in data
        self.tags: BaseTagsFormSet = tags_formset({}, data if has_rows else None)
        self.chosen: Resource | None = None
        self._facts: ResourceFacts | None = None

    @property
    def picker_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.PICKER_FIELDS]

    @property
    def plain_fields(self) -> list[forms.BoundField]:
        return [field for field in self if field.name not in self.PICKER_FIELDS]

    def clean_resource(self) -> Resource | None:
        value = self.cleaned_data["resource"].strip()
        if not value:
            return None
        resource = resource_in(self.organization, value)
        if resource is None:
            raise ValidationError(
                "Choose a resource of this organization.", code="invalid_resource"
            )
        self.chosen = resource
        return resource

    def _typed_tags(self) -> dict[str, str]:
        if not self.tags.is_bound:
            return {}
        if not self.tags.is_valid():
            for error in [*self.tags.non_form_errors(), *(e for f in self.tags.errors for e in f)]:
                self.add_error(None, f"Tags: {error}")
            return {}
        try:
            return check_tags(self.tags.tags)
        except ValidationError as error:
            self.add_error(None, error.messages)
            return {}

    def clean_resource_question(self, data: dict[str, Any]) -> ResourceFacts | None:
        """The resource asked about, from the cleaned `data` (errors added to the form)."""
        resource: Resource | None = data.get("resource")
        type_key = data.get("resource_type", "")
        project: Project | None = data.get("project")
        tags = self._typed_tags()
        if resource is not None:
            if type_key and type_key != resource.type:
                self.add_error(
                    "resource_type", f"{resource.name} is a {resource.get_type_display()}."
                )
            if project is not None and project != resource.project:
                self.add_error(
                    "project",
                    f"{resource.name} is in project {resource.project.name}: "
                    "leave the project empty or choose that one.",
                )
            if tags:
                self.add_error(
                    None, "A registered resource is asked about with its own tags: clear the rows."
                )
            return resource_facts(resource)
        if type_key:
            if project is None:
                self.add_error("project", "Choose the project of the resource.")
                return None
            return ResourceFacts.of(type=type_key, id=None, project_id=project.pk, tags=tags)
        if tags:
            self.add_error("resource_type", "Choose the type of the resource these tags describe.")
        return None

    def check_action(self, action: str, facts: ResourceFacts | None) -> None:
        """An action asked about a resource must be one of its type's."""
        if facts is None or not action or "action" in self.errors:
            return
        if message := wrong_action_for(action, facts.type):
            self.add_error("action", message)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "resource" not in self.errors:
            self._facts = self.clean_resource_question(data)
        return data

    def resource_facts(self) -> ResourceFacts | None:
        """The resource asked about; call after `is_valid()`."""
        return self._facts


class SimulatorForm(ResourceQuestionForm):
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
        help_text="Required for project-level actions (a registered resource says its own).",
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

    field_order = ["principal", "action", "project", "resource", "resource_type"]

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["principal"].set_principals(organization)

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
        facts = self.resource_facts()
        self.check_action(data.get("action", ""), facts)
        questioned = {"project", "resource", "resource_type"} & self.errors.keys()
        if action is not None and facts is None and not questioned:
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
