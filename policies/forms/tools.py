"""Forms of the IAM tools: the simulator, and the resource a question may be about (the
simulator's and effective permissions')."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from iamportal.widgets import (
    PICK_MATCHES,
    SearchPick,
    chosen_of,
    escape_html,
    pick_matches,
    pick_searches,
)
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


# What a principal is searched by: a user's email or name, an application's name.
MEMBER_FIELDS = ("user__email", "user__full_name")
APPLICATION_FIELDS = ("name",)


def _member_label(membership: Membership) -> str:
    flags = (("owner", membership.is_owner), ("suspended", not membership.is_active))
    notes = [note for note, on in flags if on]
    return f"{membership.user.email} ({', '.join(notes)})" if notes else membership.user.email


def _with_kind(value: Any) -> Any:
    # Links from a user's page pass the bare membership id.
    if isinstance(value, str) and value and ":" not in value:
        return f"user:{value}"
    return value


def principal_value(principal: Membership | Application) -> str:
    """How the simulator's picker posts a principal: `user:<membership id>` or
    `application:<id>`."""
    kind = "user" if isinstance(principal, Membership) else "application"
    return f"{kind}:{principal.pk}"


def principal_label(principal: Membership | Application) -> str:
    if isinstance(principal, Membership):
        return _member_label(principal)
    return f"{principal.name} (application)"


def principal_named(organization: Organization, value: Any) -> Membership | Application | None:
    """The organization's user or application a posted value names, if any (one query)."""
    kind, _, pk = str(_with_kind(value) or "").partition(":")
    queryset = {
        "user": members_of(organization),
        "application": organization.applications.all(),
    }.get(kind)
    found = chosen_of(queryset, [pk]) if queryset is not None else []
    return found[0] if found else None


def principal_matches(
    organization: Organization, q: str, exclude: Iterable[Membership | Application] = ()
) -> list[Membership | Application]:
    """At most `PICK_MATCHES` users and applications matching `q` (email, name or
    application name), those starting with it first, then by label; none without `q`."""
    left_out = {principal_value(p) for p in exclude}
    members = pick_matches(members_of(organization), q, MEMBER_FIELDS)
    applications = pick_matches(organization.applications.all(), q, APPLICATION_FIELDS)
    found = [p for p in (*members, *applications) if principal_value(p) not in left_out]
    q = q.strip().lower()

    def rank(principal: Membership | Application) -> tuple[int, str]:
        if isinstance(principal, Membership):
            texts = (principal.user.email, principal.user.full_name)
        else:
            texts = (principal.name,)
        starts = any(text.lower().startswith(q) for text in texts if text)
        return (0 if starts else 1, principal_label(principal).lower())

    return sorted(found, key=rank)[:PICK_MATCHES]


class PrincipalPick(SearchPick):
    """The simulator's principal: a SearchPick over the organization's users and
    applications at once (values `user:<id>` / `application:<id>`), which one queryset
    cannot hold, so it finds the chosen one and the matches itself."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("placeholder", "Type an email, a name or an application")
        super().__init__(**kwargs)
        self.lookup: Callable[[Any], Membership | Application | None] = lambda value: None
        self.organization: Organization | None = None

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)  # no queryset: nothing chosen yet
        values = [v for v in self.format_value(value) if v]
        chosen = [p for p in (self.lookup(v) for v in values[:1]) if p is not None]
        found = []
        if self.organization is not None and self.q:  # the no-script search
            found = principal_matches(self.organization, self.q, exclude=chosen)
        context["widget"].update(
            chosen=[(principal_value(p), principal_label(p)) for p in chosen],
            matches=[(principal_value(p), principal_label(p)) for p in found],
        )
        return context


class PrincipalChoiceField(forms.ChoiceField):
    """A user (`user:<membership id>`, or a bare membership id) or an application
    (`application:<id>`) of the organization; cleans to the Membership or Application.
    Only the posted one is looked up: the picker searches (PrincipalPick)."""

    widget = PrincipalPick
    default_error_messages = {
        "invalid_choice": "Choose a user or an application of this organization.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=(), **kwargs)
        self.organization: Organization | None = None
        self.found: dict[str, Membership | Application | None] = {}

    def set_organization(self, organization: Organization, search_url: str = "") -> None:
        self.organization = organization
        self.widget.organization = organization
        self.widget.lookup = self.lookup
        self.widget.search_url = search_url

    def lookup(self, value: Any) -> Membership | Application | None:
        """The organization's principal `value` names, looked up once per form."""
        value = str(_with_kind(value) or "")
        if value not in self.found:
            organization = self.organization
            self.found[value] = principal_named(organization, value) if organization else None
        return self.found[value]

    def to_python(self, value: Any) -> str:
        return _with_kind(super().to_python(value))

    def valid_value(self, value: str) -> bool:
        return self.lookup(value) is not None

    def clean(self, value: Any) -> Membership | Application | None:
        cleaned = super().clean(value)
        return self.lookup(cleaned) if cleaned else None

    def prepare_value(self, value: Any) -> Any:
        return _with_kind(value)


def project_pick(empty_label: str) -> SearchPick:
    """A project picker (the organization's projects, searched by name), with `empty_label`
    offered first to choose none."""
    widget = SearchPick(placeholder="Type a project name")
    widget.fixed = [("", empty_label)]
    return widget


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
        widget=project_pick("No project"),
    )
    # The fields the resource picker renders itself (not in the form's plain field list).
    PICKER_FIELDS = ("resource", "resource_type")

    def __init__(
        self,
        *args: Any,
        organization: Organization,
        project_search_url: str = "",
        query: Any = None,
        **kwargs: Any,
    ) -> None:
        """`project_search_url`: the project picker's search endpoint (guarded as the
        page); `query` (request.GET): its no-script search."""
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["project"].queryset = projects_of(organization).order_by("name")
        self.fields["project"].widget.search_url = project_search_url
        if query is not None:
            pick_searches(self, query)
        data = self.data if self.is_bound else None
        # Without the rows' management data (a link), no tags were typed in.
        has_rows = data is not None and "tags-TOTAL_FORMS" in data
        self.tags: BaseTagsFormSet = tags_formset({}, data if has_rows else None)
        # Before its rows and management form are built, which take them.
        self.tags.renderer = self.tags.form_renderer = self.renderer
        self.chosen: Resource | None = None
        self._facts: ResourceFacts | None = None

    def tag_rows_html(self) -> SafeString:
        """The tag rows of the resource question's table (_resource_question.html), each
        input with its hidden label: in Python, as a template loop cost ~0.1 ms a row."""
        rows = []
        for number, row in enumerate(self.tags, start=1):
            cells = "".join(
                f'\n          <td><label class="visually-hidden"'
                f' for="{escape_html(bound.id_for_label)}">{word} {number}</label>'
                f"{bound}{bound.errors}</td>"
                for word, bound in (("Key", row["key"]), ("Value", row["value"]))
            )
            rows.append(f"\n        <tr>{cells}\n        </tr>\n        ")
        return mark_safe("".join(rows))  # noqa: S308 - the rows' values are escaped

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
        if isinstance(data.get("project"), Project):  # its picker shows it without a query
            self.fields["project"].widget.known = [data["project"]]
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
        widget=project_pick("No project (organization-level action)"),
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
        kwargs.setdefault(
            "project_search_url",
            reverse("organizations:pick_simulator_projects", args=[organization.pk]),
        )
        super().__init__(*args, organization=organization, **kwargs)
        self.fields["principal"].set_organization(
            organization,
            reverse("organizations:pick_simulator_principals", args=[organization.pk]),
        )

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
