"""Forms of rules: the rule with its condition builder, and the condition tester's values."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.urls import reverse

from iamportal.widgets import SearchPickMultiple
from organizations.models import Organization, Project, Resource
from organizations.tags import check_tags
from policies import catalogue
from policies.conditions.builder import build_condition
from policies.conditions.compiler import ConditionError, parse_ip_range, parse_timezone
from policies.conditions.reader import split_condition
from policies.conditions.warnings import condition_warning
from policies.forms.policies import lines_of
from policies.models import Rule


class ConditionForm(forms.Form):
    """The condition of a rule: common cases as fields, and raw CEL for the rest.

    When fields and raw CEL are both given, the condition is their conjunction: every
    part must hold. A stored condition comes back in the fields that wrote it, and what
    they cannot express as raw CEL (`policies.conditions.reader`).
    """

    ip_ranges = forms.CharField(
        label="Source IP ranges",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "203.0.113.0/24"}),
        help_text="One range per line; the request must come from one of them.",
    )
    user_agent_contains = forms.CharField(
        label="User agent contains", max_length=200, required=False
    )
    time_after = forms.CharField(
        label="From",
        required=False,
        widget=forms.TextInput(attrs={"type": "time"}),
    )
    time_before = forms.CharField(
        label="Until",
        required=False,
        widget=forms.TextInput(attrs={"type": "time"}),
        help_text="Times as HH:MM, from included, until excluded; a window such as 22:00 "
        "to 06:00 crosses midnight.",
    )
    timezone = forms.CharField(label="Time zone", max_length=64, initial="UTC", required=False)
    require_mfa = forms.BooleanField(label="Require MFA", required=False)
    condition = forms.CharField(
        label="CEL condition",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=(
            "Variables: request.ip, request.user_agent, request.time, request.mfa, "
            "principal.type, principal.id, principal.tags; resource.type, resource.id, "
            "resource.project, resource.tags (asked about a resource); function "
            'ip_in_range(ip, cidr). E.g. resource.tags["team"] == principal.tags["team"]. '
            "Combined with the fields above by AND."
        ),
    )

    def clean_ip_ranges(self) -> list[str]:
        ranges = lines_of(self.cleaned_data["ip_ranges"])
        for cidr in ranges:
            try:
                parse_ip_range(cidr)
            except ConditionError as error:
                raise forms.ValidationError(error.message) from None
        return ranges

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"].strip() or "UTC"
        try:
            parse_timezone(name)
        except ConditionError as error:
            raise forms.ValidationError(error.message) from None
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            built = build_condition(
                ip_ranges=data["ip_ranges"],
                user_agent_contains=data["user_agent_contains"] or None,
                time_after=data["time_after"] or None,
                time_before=data["time_before"] or None,
                timezone=data["timezone"],
                require_mfa=data["require_mfa"],
            )
        except ConditionError as error:
            raise forms.ValidationError(error.message) from None
        raw = data["condition"].strip()
        data["condition"] = f"({built}) && ({raw})" if built and raw else built or raw
        return data


_SCOPES_WITHOUT_PROJECTS = (Rule.Scope.ORGANIZATION, Rule.Scope.ALL_PROJECTS)
# A rule names at most this many resources (the API's bound too).
RESOURCES_MAX = 100


def _fit_projects(actions: list[str]) -> bool:
    try:
        catalogue.validate_rule_actions(actions, Rule.Scope.PROJECTS)
    except catalogue.CatalogueError:
        return False
    return True


class RuleForm(ConditionForm):
    """A rule: effect, actions (permission sets ticked and patterns typed), scope."""

    effect = forms.ChoiceField(
        choices=Rule.Effect.choices, widget=forms.RadioSelect, initial=Rule.Effect.ALLOW
    )
    permission_sets = forms.MultipleChoiceField(
        label="Permission sets",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[
            (name, f"{name} ({catalogue.permission_set_level(name)}): {pset.description}")
            for name, pset in catalogue.PERMISSION_SETS.items()
        ],
    )
    actions = forms.CharField(
        label="Other actions",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "spellcheck": "false", "placeholder": "billing:invoices:read"}
        ),
        help_text="One per line: an action (iam:users:list) or a wildcard (*, billing:*, "
        "iam:users:*).",
    )
    scope = forms.ChoiceField(
        choices=Rule.Scope.choices,
        widget=forms.RadioSelect,
        initial=Rule.Scope.ORGANIZATION,
        help_text="Organization-level actions need the organization scope; project-level "
        "ones, all projects or chosen projects; a resource type's read, update and delete, "
        "chosen resources.",
    )
    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.none(),
        required=False,
        # A search, not a checkbox per project: the ticked ones stay, the rest are found.
        widget=SearchPickMultiple(placeholder="Type a project name"),
        help_text="For the chosen-projects scope, which ticking one under the organization "
        "scope selects.",
    )
    # Rendered by the resource picker (templates/policies/_resource_picker.html): the
    # chosen resources ticked, and a bounded search of the others.
    resources = forms.ModelMultipleChoiceField(
        queryset=Resource.objects.none(),
        required=False,
        help_text="For the chosen-resources scope: search by name, tag key or key=value.",
    )

    field_order = [
        "effect",
        "permission_sets",
        "actions",
        "scope",
        "projects",
        "resources",
        "ip_ranges",
        "user_agent_contains",
        "time_after",
        "time_before",
        "timezone",
        "require_mfa",
        "condition",
    ]

    def __init__(
        self,
        *args: Any,
        projects: QuerySet[Project],
        is_guardrail: bool = False,
        rule: Rule | None = None,
        organization: Organization,
        **kwargs: Any,
    ) -> None:
        """`organization` (the projects') gives the projects picker its search endpoint."""
        # One page may hold the add form and an edit form: their ids must differ.
        self.form_id = f"rule-{rule.pk}" if rule is not None else "new-rule"
        kwargs.setdefault("auto_id", f"{self.form_id}-%s")
        # Set when the stored condition holds CEL the fields cannot show: the page says so.
        self.custom_condition = False
        if rule is not None:
            built, typed = split_condition(rule.condition)
            self.custom_condition = bool(typed)
            kwargs["initial"] = {
                "effect": rule.effect,
                "permission_sets": [a for a in rule.actions if a in catalogue.PERMISSION_SETS],
                "actions": "\n".join(a for a in rule.actions if a not in catalogue.PERMISSION_SETS),
                "scope": rule.scope,
                "projects": list(rule.projects.all()),
                "resources": list(rule.resources.all()),
                **built,
                "ip_ranges": "\n".join(built["ip_ranges"]),
                "condition": typed,
            }
        super().__init__(*args, **kwargs)
        self.fields["projects"].queryset = projects
        endpoint = "pick_guardrail_projects" if is_guardrail else "pick_rule_projects"
        self.fields["projects"].widget.search_url = reverse(
            f"organizations:{endpoint}", args=[organization.pk]
        )
        # The resources of the projects offered: the organization's.
        self.fields["resources"].queryset = Resource.objects.filter(project__in=projects)
        if is_guardrail:
            # Guardrails only deny: compile_rule refuses an allow all the same.
            self.fields["effect"].choices = [(Rule.Effect.DENY, "Deny")]
            self.fields["effect"].initial = Rule.Effect.DENY

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["actions"] = [*data.get("permission_sets", []), *lines_of(data.get("actions", ""))]
        if not data["actions"] and "actions" not in self.errors:
            self.add_error("actions", "Tick a permission set or type at least one action.")
        if data.get("projects") and data.get("scope") in _SCOPES_WITHOUT_PROJECTS:
            self._scope_from_projects(data)
        if data.get("resources") and data.get("scope") not in (None, Rule.Scope.RESOURCES):
            self._scope_from_resources(data)
        return data

    def clean_resources(self) -> QuerySet[Resource]:
        resources = self.cleaned_data["resources"]
        if len(resources) > RESOURCES_MAX:
            raise forms.ValidationError(f"Choose at most {RESOURCES_MAX} resources.")
        return resources

    def _scope_from_resources(self, data: dict[str, Any]) -> None:
        """Resources ticked under another scope: under the default (organization) scope
        with no project ticked, the rule is meant for them; otherwise say what to change."""
        if data["scope"] == Rule.Scope.ORGANIZATION and not data.get("projects"):
            data["scope"] = Rule.Scope.RESOURCES
            return
        scope = Rule.Scope(data["scope"]).label
        self.add_error(
            "resources",
            f"Resources are ticked but the scope is {scope}: choose the scope "
            "“Chosen resources” to limit the rule to them, or untick them.",
        )

    def chosen_resources(self) -> list[Resource]:
        """The resources to show ticked: as posted (even when the form is refused), else
        the rule's. Unknown or foreign ids are left out; at most `RESOURCES_MAX`."""
        if self.is_bound:
            values = self["resources"].value() or []
            ids = [value for value in values if _is_uuid(value)][:RESOURCES_MAX]
        else:
            ids = [getattr(r, "pk", r) for r in self.initial.get("resources", ())]
        if not ids:
            return []
        queryset = self.fields["resources"].queryset.filter(pk__in=ids)
        return list(queryset.select_related("project").order_by("type", "name", "pk"))

    def _scope_from_projects(self, data: dict[str, Any]) -> None:
        """Projects ticked under another scope: the organization scope is the default, so
        when the actions fit projects the rule is meant for the ticked ones; otherwise the
        message says what to change."""
        if data["scope"] == Rule.Scope.ORGANIZATION and _fit_projects(data["actions"]):
            data["scope"] = Rule.Scope.PROJECTS
            return
        scope = Rule.Scope(data["scope"]).label
        self.add_error(
            "projects",
            f"Projects are ticked but the scope is {scope}: choose the scope "
            "“Chosen projects” to limit the rule to them, or untick them.",
        )

    def condition_warning(self) -> str | None:
        """Why the valid condition may be a mistake (never or always true), or None."""
        condition = self.cleaned_data["condition"]
        return condition_warning(condition) if condition else None

    def rule_values(self) -> dict[str, Any]:
        """The keyword arguments of `rule_add` / `rule_update`."""
        data = self.cleaned_data
        return {
            "effect": data["effect"],
            "actions": data["actions"],
            "scope": data["scope"],
            "projects": list(data["projects"]),
            "resources": list(data["resources"]),
            "condition": data["condition"],
        }


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def resource_types_of(patterns: list[str]) -> list[str]:
    """The resource types whose actions `patterns` name (for the picker's filter); empty
    when none or when a pattern is not (yet) valid: the picker then searches every type."""
    actions: set[str] = set()
    for pattern in patterns:
        try:
            actions |= catalogue.expand_pattern(pattern)
        except catalogue.CatalogueError:
            return []
    return [key for key, kind in catalogue.RESOURCE_TYPES.items() if actions & set(kind.actions)]


def _json_tags(value: str, label: str) -> dict[str, str] | None:
    """Tags typed as a JSON object (a tag key may hold `=`, so `key=value` lines would be
    ambiguous), checked by the stored tags' rules; None when blank."""
    if not value.strip():
        return None
    try:
        tags = json.loads(value)
    except ValueError:
        raise forms.ValidationError(f'{label}: a JSON object, e.g. {{"team": "web"}}.') from None
    try:
        return check_tags(tags)
    except ValidationError as error:
        raise forms.ValidationError(" ".join(error.message_dict["tags"])) from None


class ConditionTestForm(forms.Form):
    """Values to test a condition against; blank ones fall back to the current request
    (and to your own tags)."""

    test_ip = forms.GenericIPAddressField(label="IP address", required=False)
    test_user_agent = forms.CharField(label="User agent", max_length=512, required=False)
    test_time = forms.DateTimeField(
        label="Time",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In the server's time zone (UTC).",
    )
    test_mfa = forms.BooleanField(label="Signed in with MFA", required=False)
    test_principal_tags = forms.CharField(
        label="Principal tags",
        required=False,
        max_length=20_000,
        widget=forms.TextInput(attrs={"placeholder": '{"team": "web"}'}),
        help_text="principal.tags, as a JSON object; blank: your own.",
    )
    test_resource_type = forms.ChoiceField(
        label="Resource type",
        required=False,
        choices=[
            ("", "No resource"),
            *((key, t.singular) for key, t in catalogue.RESOURCE_TYPES.items()),
        ],
        help_text="For conditions on resource.*: a resource of this type, not registered.",
    )
    test_resource_tags = forms.CharField(
        label="Resource tags",
        required=False,
        max_length=20_000,
        widget=forms.TextInput(attrs={"placeholder": '{"team": "web"}'}),
        help_text="resource.tags, as a JSON object.",
    )

    def clean_test_principal_tags(self) -> dict[str, str] | None:
        return _json_tags(self.cleaned_data["test_principal_tags"], "Principal tags")

    def clean_test_resource_tags(self) -> dict[str, str] | None:
        return _json_tags(self.cleaned_data["test_resource_tags"], "Resource tags")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("test_resource_tags") and not data.get("test_resource_type"):
            self.add_error("test_resource_type", "Choose the resource's type for its tags.")
        return data

    def has_values(self) -> bool:
        return any(self.cleaned_data.get(name) for name in self.fields)
