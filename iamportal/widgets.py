"""Form widgets shared by the apps."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.forms.renderers import DjangoTemplates
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def escape_html(value: Any) -> str:
    """django.utils.html.conditional_escape without its lazy-string wrapper (which costs
    most of its time): for markup built in Python row by row."""
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


_escape = escape_html


class LongSelect(forms.Select):
    """A `<select>` written in Python, with the markup of Django's. Django renders one
    template per option, which for the few hundred principals and event types of the audit
    filter cost 10-15 ms a page."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = []
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(f'<optgroup label="{_escape(group_name)}">')
            for option in options:
                value = "" if option["value"] is None else option["value"]
                extra = flatatt(option["attrs"]) if option["attrs"] else ""
                parts.append(
                    f'<option value="{_escape(value)}"{extra}>{_escape(option["label"])}</option>'
                )
            if group_name:
                parts.append("</optgroup>")
        return format_html(
            '<select name="{}"{}>{}</select>',
            widget["name"],
            flatatt(widget["attrs"]),
            mark_safe("".join(parts)),  # noqa: S308 - every value above is escaped
        )


# A picker's search returns at most this many matches: a page is bounded by what it shows.
PICK_MATCHES = 20
_PICK_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def pick_matches(queryset: QuerySet[Any], q: str, fields: Sequence[str]) -> list[Any]:
    """Up to `PICK_MATCHES` rows of `queryset` with `q` in one of `fields` (ignoring case),
    those starting with it first, then by the first field. Nothing without a search."""
    q = q.replace("\x00", "").strip()[:100]  # PostgreSQL refuses NUL in a query
    if not q or not fields:
        return []
    found = Q()
    starts = Q()
    for field in fields:
        found |= Q(**{f"{field}__icontains": q})
        starts |= Q(**{f"{field}__istartswith": q})
    ranked = queryset.filter(found).alias(
        _pick_rank=Case(When(starts, then=Value(0)), default=Value(1))
    )
    return list(ranked.order_by("_pick_rank", Lower(fields[0]), "pk")[:PICK_MATCHES])


def chosen_of(queryset: QuerySet[Any], values: Iterable[Any]) -> list[Any]:
    """The rows of `queryset` among the posted `values` (ill-formed ones left out)."""
    model = queryset.model
    pks = []
    for value in values:
        try:
            pks.append(model._meta.pk.to_python(value))
        except (ValidationError, ValueError, TypeError):
            continue
    return list(queryset.filter(pk__in=pks)) if pks else []


def pick_name(value: str, default: str) -> str:
    """A posted field name or element id a picker's results reuse, when well formed."""
    return value if _PICK_NAME.match(value or "") else default


class SearchPick(forms.Select):
    """A search-as-you-type picker for a ModelChoiceField (or, as SearchPickMultiple, a
    ModelMultipleChoiceField): a search box whose matches (HTMX from `search_url`, or a
    plain GET of the page with `<name>_q` through the page's `search-pick` form) come as
    radio buttons or checkboxes named like the field. It renders only the chosen rows,
    never the field's queryset, which the field still validates a posted pk against.

    `search_fields` are the lookups matched (the first one orders); set `search_url` and,
    for the no-script fallback, `q` (`pick_searches`) once the form is built."""

    template_name = "includes/_search_pick.html"
    input_type = "radio"

    def __init__(
        self,
        attrs: dict[str, Any] | None = None,
        *,
        search_fields: Sequence[str] = ("name",),
        placeholder: str = "Type a name",
        search_url: str = "",
    ) -> None:
        super().__init__(attrs)
        self.search_fields = tuple(search_fields)
        self.placeholder = placeholder
        self.search_url = search_url
        self.q = ""
        # Options always offered before the searched rows (e.g. "Yourself", "None"), and,
        # for a field that is not a model choice, the rows searched and how they read.
        self.fixed: list[tuple[str, str]] = []
        self.queryset: QuerySet[Any] | None = None
        self.label: Callable[[Any], str] = str
        # Rows the form already read (its cleaned value): shown without reading them again.
        self.known: list[Any] = []

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        # forms.Widget's context, not Select's: Select's iterates every choice.
        context = forms.Widget.get_context(self, name, value, attrs)
        iterator = self.choices
        field = getattr(iterator, "field", None)
        queryset = getattr(iterator, "queryset", self.queryset)
        values = [str(v) for v in self.format_value(value)]
        fixed_values = {str(v) for v, _label in self.fixed}
        searched = [v for v in values if v and v not in fixed_values]
        known = {str(row.pk): row for row in self.known}
        if len(searched) == 1 and searched[0] in known:
            chosen = [known[searched[0]]]
        else:
            chosen = chosen_of(queryset, searched) if queryset is not None else []
        label = field.label_from_instance if field is not None else self.label
        found = []
        if queryset is not None and self.q:  # the no-script search (`pick_searches`)
            others = queryset.exclude(pk__in=[row.pk for row in chosen])
            found = pick_matches(others, self.q, self.search_fields)
        context["widget"].update(
            {
                "input_type": self.input_type,
                "fixed": [(v, text, str(v) in values) for v, text in self.fixed],
                "chosen": [(row.pk, label(row)) for row in chosen],
                "matches": [(row.pk, label(row)) for row in found],
                "q": self.q,
                "search_url": self.search_url,
                "placeholder": self.placeholder,
                "limit": PICK_MATCHES,
            }
        )
        return context

    def _render(self, template_name: str, context: dict[str, Any], renderer: Any = None) -> str:
        # Written in Python, with the markup of includes/_search_pick.html (tests compare
        # the two): through the template a picker cost ~0.3 ms, on every page with a form.
        return search_pick_html(context["widget"])

    def use_required_attribute(self, initial: Any) -> bool:
        return False  # a radio group's `required` would block the search fallback

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_q" if id_ else id_


def search_pick_html(widget: dict[str, Any]) -> SafeString:
    """A SearchPick's markup (includes/_search_pick.html) from its context's `widget`."""
    name = _escape(widget["name"])
    input_type = _escape(widget["input_type"])
    id_ = _escape(widget["attrs"].get("id") or widget["name"])
    search = ""
    if widget["search_url"]:
        search = (
            f'\n         hx-get="{_escape(widget["search_url"])}" hx-trigger="input changed'
            f' delay:250ms, search" hx-target="#{id_}-results" hx-swap="outerHTML"'
            f'\n         hx-include="#{id_}-results" hx-vals=\'{{"name": "{name}", "id": "{id_}",'
            f' "type": "{input_type}"}}\''
        )
    fixed = ""
    if widget["fixed"]:
        items = "".join(
            f'<li><label><input type="{input_type}" name="{name}" value="{_escape(value)}"'
            f"{' checked' if checked else ''}> {_escape(label)}</label></li>"
            for value, label, checked in widget["fixed"]
        )
        fixed = f'<ul class="picker-results">{items}</ul>'
    results = search_pick_results_html(
        id_=id_,
        name=name,
        input_type=input_type,
        chosen=widget["chosen"],
        matches=widget["matches"],
        q=widget["q"],
        limit=widget["limit"],
    )
    return mark_safe(  # noqa: S308 - every value is escaped above
        f'\n<div class="search-pick">\n  <input id="{id_}_q" type="search" name="{name}_q"'
        f' value="{_escape(widget["q"])}" form="search-pick"'
        f' placeholder="{_escape(widget["placeholder"])}" autocomplete="off"'
        f" data-picker-search{search}>\n"
        '  <button type="submit" form="search-pick" class="button secondary small js-hide">'
        f"Search</button>\n  {fixed}\n  {results}\n</div>\n"
    )


def search_pick_results_html(
    *,
    id_: str,
    name: str,
    input_type: str,
    chosen: Sequence[tuple[Any, Any]],
    matches: Sequence[tuple[Any, Any]],
    q: str,
    limit: int,
) -> str:
    """includes/_search_pick_results.html's markup; `id_`, `name` and `input_type` come
    escaped."""

    def item(pk: Any, label: Any, checked: str) -> str:
        return (
            f'<li><label><input type="{input_type}" name="{name}" value="{_escape(pk)}"'
            f"{checked}> {_escape(label)}</label></li>"
        )

    rows = "".join(item(pk, label, " checked") for pk, label in chosen)
    found = "".join(item(pk, label, "") + "\n  " for pk, label in matches)
    if not matches and q:
        found = (
            f'<li class="muted">Nothing{" else" if chosen else ""} matches'
            f" \u201c{_escape(q)}\u201d.</li>"
        )
    more = (
        f'<li class="muted">Showing the first {limit}: type more to narrow.</li>'
        if len(matches) >= limit
        else ""
    )
    return (
        f'\n<ul id="{id_}-results" class="picker-results" aria-live="polite">\n  {rows}\n'
        f"  {found}\n  {more}\n</ul>\n"
    )


class SearchPickMultiple(SearchPick):
    """SearchPick for a ModelMultipleChoiceField: checkboxes; the ticked ones stay."""

    allow_multiple_selected = True
    input_type = "checkbox"

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        getter = getattr(data, "getlist", None)
        return getter(name) if getter else data.get(name)

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False  # unticking every box posts nothing, which is a value


def pick_searches(form: forms.Form, query: Any) -> forms.Form:
    """Give each SearchPick of `form` its search from a plain GET of the page
    (`<field name>_q`): the no-script fallback renders the matches in the form."""
    for bound in form:
        widget = bound.field.widget
        if isinstance(widget, SearchPick):
            widget.q = (query.get(f"{bound.html_name}_q") or "").replace("\x00", "").strip()[:100]
    return form


def pick_form(
    name: str,
    queryset: QuerySet[Any],
    *,
    label: str,
    search_url: str,
    query: Any = None,
    placeholder: str = "Type a name",
    search_fields: Sequence[str] = ("name",),
    auto_id: str = "id_%s",
) -> forms.Form:
    """A one-field form picking a row of `queryset` (posted as `name`), for the pages whose
    views read the posted id themselves; `query` (request.GET) feeds the no-script search."""
    field = forms.ModelChoiceField(
        queryset=queryset,
        label=label,
        widget=SearchPick(
            search_fields=search_fields, placeholder=placeholder, search_url=search_url
        ),
    )
    form = type("PickForm", (forms.Form,), {name: field})(auto_id=auto_id)
    return pick_searches(form, query) if query is not None else form


# ------------------------------------------------------------------ fast form renderer


def _attrs_html(attrs: dict[str, Any]) -> str:
    # django/forms/attrs.html (and widgets/attrs.html): True alone, False left out.
    return "".join(
        f" {_escape(key)}" if value is True else f' {_escape(key)}="{_escape(value)}"'
        for key, value in attrs.items()
        if value is not False
    )


def _input_html(context: dict[str, Any]) -> str:
    widget = context["widget"]
    value = "" if widget["value"] is None else f' value="{_escape(widget["value"])}"'
    return (
        f'<input type="{_escape(widget["type"])}" name="{_escape(widget["name"])}"'
        f"{value}{_attrs_html(widget['attrs'])}>"
    )


def _select_html(context: dict[str, Any]) -> str | None:
    widget = context["widget"]
    parts = [f'<select name="{_escape(widget["name"])}"{_attrs_html(widget["attrs"])}>']
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_escape(group_name)}">')
        for option in options:
            if option["template_name"] != "django/forms/widgets/select_option.html":
                return None
            parts.append(
                f'\n  <option value="{_escape(option["value"])}"{_attrs_html(option["attrs"])}>'
                f"{_escape(option['label'])}</option>\n"  # the option template's last line
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _label_html(context: dict[str, Any]) -> str:
    if not context["use_tag"]:
        return _escape(context["label"])
    tag = _escape(context["tag"])
    return f"<{tag}{_attrs_html(context['attrs'] or {})}>{_escape(context['label'])}</{tag}>"


def _field_html(context: dict[str, Any]) -> str | None:
    field = context["field"]
    if field.use_fieldset:
        return None
    label = str(field.label_tag()) if field.label else ""
    help_text = ""
    if field.help_text:
        auto_id = f' id="{_escape(field.auto_id)}_helptext"' if field.auto_id else ""
        help_text = f'<div class="helptext"{auto_id}>{field.help_text}</div>'  # |safe
    return f"\n  {label}\n\n{help_text}\n{field.errors}\n{field}".strip()


def _errors_html(context: dict[str, Any]) -> str | None:
    return "" if not context["errors"] else None


def _hidden_form_html(context: dict[str, Any]) -> str | None:
    # div.html of a form of hidden fields only (a formset's management form).
    if context["fields"] or context["errors"]:
        return None
    return "".join(str(field) for field in context["hidden_fields"])


_INPUTS = ("text", "email", "url", "number", "password", "hidden", "date", "datetime")
_IN_PYTHON: dict[str, Callable[[dict[str, Any]], str | None]] = {
    **{f"django/forms/widgets/{kind}.html": _input_html for kind in _INPUTS},
    "django/forms/widgets/checkbox.html": _input_html,
    "django/forms/widgets/select.html": _select_html,
    "django/forms/label.html": _label_html,
    "django/forms/field.html": _field_html,
    "django/forms/errors/list/default.html": _errors_html,
    "django/forms/div.html": _hidden_form_html,
}


class PythonRenderer(DjangoTemplates):
    """Django's form renderer, but the plain templates (inputs, selects, labels, field
    groups, no errors) are written in Python with their exact markup (tests compare the
    two, form by form and page by page): through the template engine each costs 50-300 µs,
    and a form has dozens. Anything else (errors shown, fieldsets, custom templates) still
    goes through the templates. The project's FORM_RENDERER."""

    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        build = _IN_PYTHON.get(template_name)
        if build is not None and request is None:
            html_ = build(context)
            if html_ is not None:
                return html_
        return super().render(template_name, context, request)
