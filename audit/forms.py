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
from scim.models import ScimToken

_PRINCIPAL = re.compile(r"^(user|application|api_key|scim_token):[0-9A-Za-z-]{1,64}$")
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


def resolve_principal(organization: Organization, value: str) -> str | None:
    """The `user:<id>`, `application:<id>`, `api_key:<id>` or `scim_token:<id>` a typed
    principal names: an id as such (a deleted principal's too), else a user's email, an
    application's name, a key's access key or a SCIM token's prefix in the organization
    (one indexed lookup each, tried in that order)."""
    value = value.strip()
    if value == "system" or _PRINCIPAL.match(value):
        return value
    if "@" in value:
        user_id = (
            Membership.objects.filter(organization=organization, user__email__iexact=value)
            .values_list("user_id", flat=True)
            .first()
        )
        return f"user:{user_id}" if user_id else None
    application_id = (
        Application.objects.filter(organization=organization, name__iexact=value)
        .values_list("pk", flat=True)
        .first()
    )
    if application_id:
        return f"application:{application_id}"
    key_id = (
        APIKey.objects.filter(organization=organization, access_key=value)
        .values_list("pk", flat=True)
        .first()
    )
    if key_id:
        return f"api_key:{key_id}"
    token_id = (
        ScimToken.objects.filter(organization=organization, prefix=value)
        .values_list("pk", flat=True)
        .first()
    )
    return f"scim_token:{token_id}" if token_id else None


class EventFilterForm(forms.Form):
    action = forms.ChoiceField(label="Event", required=False, widget=LongSelect)
    # Typed, not chosen from a list of every principal (that list was most of each request).
    principal = forms.CharField(
        label="Principal",
        required=False,
        max_length=254,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Email, application, access key, token prefix or id",
            }
        ),
        help_text="“system” for events without a signed-in principal.",
    )
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
        self.organization = organization
        self.fields["action"].choices = action_choices()
        self.fields["target_type"].choices = target_type_choices()

    def clean_principal(self) -> str:
        value = self.cleaned_data["principal"]
        if not value:
            return ""
        principal = resolve_principal(self.organization, value)
        if principal is None:
            raise forms.ValidationError(
                f"No user, application or API key of this organization is “{value}”."
            )
        return principal

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "The end of the period must come after its start.")
        return cleaned
