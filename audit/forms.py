"""The trail's filter form: a GET form whose values live in the URL."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.apps import apps

from audit import events
from audit.models import AuditEvent
from iamportal.widgets import LongSelect
from organizations.models import APIKey, Application, Membership, Organization

_PRINCIPAL = re.compile(r"^(user|application|api_key):[0-9A-Za-z-]{1,64}$")
_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
_TARGET_APPS = ("accounts", "organizations", "policies", "audit")


def action_choices() -> list[Any]:
    """Every event type grouped by service; each group starts with "all of it"."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for event_type in events.all_types():
        groups.setdefault(event_type.service, []).append((event_type.name, event_type.name))
    choices: list[Any] = [("", "Any event")]
    for service, names in sorted(groups.items()):
        title = events.service_title(service)
        choices.append((title, [(f"{service}.*", f"All {title.lower()} events"), *names]))
    return choices


def target_type_choices() -> list[tuple[str, str]]:
    models = [m for name in _TARGET_APPS for m in apps.get_app_config(name).get_models()]
    choices = sorted((m._meta.label_lower, str(m._meta.verbose_name).capitalize()) for m in models)
    return [("", "Any type"), *choices]


def principal_choices(organization: Organization) -> list[Any]:
    """The organization's users, applications and API keys (three small queries)."""
    members = (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email")
    )
    applications = Application.objects.filter(organization=organization).order_by("name")
    keys = APIKey.objects.filter(organization=organization).order_by("access_key")
    return [
        ("", "Anyone"),
        ("system", "System (no signed-in principal)"),
        ("Users", [(f"user:{m.user_id}", m.user.email) for m in members]),
        ("Applications", [(f"application:{a.pk}", a.name) for a in applications]),
        ("API keys", [(f"api_key:{k.pk}", k.access_key) for k in keys]),
    ]


class _OpenChoiceField(forms.ChoiceField):
    """A choice that also accepts a well-formed principal no longer listed (deleted)."""

    def valid_value(self, value: str) -> bool:
        return super().valid_value(value) or bool(_PRINCIPAL.match(value))


class EventFilterForm(forms.Form):
    action = forms.ChoiceField(label="Event", required=False, widget=LongSelect)
    principal = _OpenChoiceField(label="Principal", required=False, widget=LongSelect)
    target = forms.CharField(
        label="Target",
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or id"}),
    )
    target_type = forms.ChoiceField(label="Target type", required=False, widget=LongSelect)
    result = forms.ChoiceField(
        label="Result",
        required=False,
        choices=[("", "Any result"), *AuditEvent.Result.choices],
    )
    since = forms.DateTimeField(
        label="From (UTC)",
        required=False,
        input_formats=_DATETIME_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="Until (UTC)",
        required=False,
        input_formats=_DATETIME_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = action_choices()
        principals = principal_choices(organization)
        chosen = self.data.get("principal", "") if self.is_bound else ""
        if chosen and _PRINCIPAL.match(chosen) and not _listed(principals, chosen):
            principals.append(("Former principals", [(chosen, chosen)]))
        self.fields["principal"].choices = principals
        self.fields["target_type"].choices = target_type_choices()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "The end of the period must come after its start.")
        return cleaned


def _listed(choices: list[Any], value: str) -> bool:
    for key, label in choices:
        if isinstance(label, list | tuple):
            if any(k == value for k, _ in label):
                return True
        elif key == value:
            return True
    return False
