"""Forms of attachments: the policy page's principal pickers and a principal's policy picker."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from iamportal.widgets import SearchPick
from organizations.models import Application, Group, Membership
from policies.models import Policy


class ModelPickField(forms.ModelChoiceField):
    """A model choice whose every wrong value (a malformed id too) gets the field's
    `invalid_choice` message, never a parser's."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            ) from None


class AttachForm(forms.Form):
    """The policy page's attach form: one principal, a user, a group or an application.

    The page renders one small form per kind, each posting one of these fields; each is a
    search picker (`search_urls` by field name), never a list of the organization.
    """

    membership = ModelPickField(
        label="User",
        queryset=Membership.objects.none(),
        required=False,
        widget=SearchPick(
            search_fields=("user__email", "user__full_name"),
            placeholder="Type an email or a name",
        ),
    )
    group = ModelPickField(
        label="Group",
        queryset=Group.objects.none(),
        required=False,
        widget=SearchPick(placeholder="Type a group name"),
    )
    application = ModelPickField(
        label="Application",
        queryset=Application.objects.none(),
        required=False,
        widget=SearchPick(placeholder="Type an application name"),
    )

    def __init__(
        self,
        *args: Any,
        memberships: QuerySet[Membership],
        groups: QuerySet[Group] | None = None,
        applications: QuerySet[Application] | None = None,
        search_urls: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for name, url in (search_urls or {}).items():
            self.fields[name].widget.search_url = url
        self.fields["membership"].queryset = memberships
        self.fields["membership"].label_from_instance = lambda m: m.user.email
        self.fields["group"].queryset = groups if groups is not None else Group.objects.none()
        self.fields["application"].queryset = (
            applications if applications is not None else Application.objects.none()
        )
        for field in self.fields.values():
            field.error_messages["invalid_choice"] = (
                "Choose one of this organization's principals that the policy is not "
                "attached to yet."
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        chosen = [data[name] for name in ("membership", "group", "application") if data.get(name)]
        if not self.errors and len(chosen) != 1:
            raise forms.ValidationError("Choose one user, group or application.")
        data["principal"] = chosen[0] if len(chosen) == 1 else None
        return data


class PolicyPickForm(forms.Form):
    """The attached-policies panel of a principal: one policy not attached to it yet."""

    policy = ModelPickField(
        label="Policy",
        queryset=Policy.objects.none(),
        widget=SearchPick(placeholder="Type a policy name"),
    )

    def __init__(
        self, *args: Any, policies: QuerySet[Policy], search_url: str = "", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = policies
        self.fields["policy"].widget.search_url = search_url
        self.fields["policy"].label_from_instance = lambda p: (
            f"{p.name} (managed)" if p.is_managed else p.name
        )
        self.fields["policy"].error_messages["invalid_choice"] = (
            "Choose a policy of this organization (or a managed one) that is not attached yet."
        )
