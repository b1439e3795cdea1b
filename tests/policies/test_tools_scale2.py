"""The policy tools' pages at scale, second pass (issue #15): their forms, the pickers and
the grant rows are written in Python (iamportal.widgets.PythonRenderer, search_pick_html,
policies.views.tools' row builders). These tests hold that markup to what Django's and the
project's templates render, so a faster page is never a different one."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.db import connection
from django.forms.renderers import DjangoTemplates
from django.http import QueryDict
from django.template import engines, loader
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from iamportal.widgets import PICK_MATCHES, PythonRenderer, SearchPick, search_pick_html
from policies.effective import EffectivePermission
from policies.forms.tools import ResourceQuestionForm, SimulatorForm
from policies.views.tools import (
    HeldAction,
    action_options_html,
    grant_rows_html,
    held_rows_html,
    simulator_fields_html,
)
from tests.conftest import Org
from tests.factories import ProjectFactory, ResourceFactory, grant

pytestmark = pytest.mark.django_db

TEMPLATES = DjangoTemplates()


def rendered(form: forms.Form) -> list[str]:
    """Every piece of `form` the tools' templates render."""
    pieces = [str(form.non_field_errors())]
    pieces += [str(field.as_field_group()) for field in form]
    pieces += [str(field) for field in form]
    pieces += [str(field.label_tag()) for field in form]
    tags = form.tags  # type: ignore[attr-defined]
    pieces += [str(tags.management_form), str(tags.non_form_errors())]
    pieces += [str(row[name]) + str(row[name].errors) for row in tags for name in row.fields]
    return pieces


def both(form_class: type[forms.Form], data: Any, **kwargs: Any) -> tuple[list[str], list[str]]:
    """`form_class` rendered by the project's renderer and by Django's templates."""
    fast = form_class(data, **kwargs)
    slow = form_class(data, renderer=TEMPLATES, **kwargs)
    assert isinstance(fast.renderer, PythonRenderer) and fast.tags.renderer is fast.renderer
    assert fast.tags.forms[0].renderer is fast.renderer  # the tag rows too
    if data is not None:
        fast.is_valid(), slow.is_valid()
    return rendered(fast), rendered(slow)


def question(org: Org, **values: str) -> QueryDict:
    query = QueryDict(mutable=True)
    query.update(values)
    return query


@pytest.fixture
def project(org: Org):
    return ProjectFactory(organization=org.organization, name='Web "<front>"')


def test_the_simulator_form_reads_as_django_renders_it(org: Org, project) -> None:
    organization = org.organization
    cases = [
        None,  # the empty form
        question(
            org,
            principal=f"user:{org.tech.pk}",
            action="compute:instances:create",
            project=str(project.pk),
            ip="10.0.0.1",
            user_agent='curl "<&>"',
            time="2026-01-02T03:04",
            mfa="on",
        ),
        # Errors everywhere: a bad address, an unknown action, a tag row with no key.
        question(
            org,
            principal="user:nobody",
            action="nope",
            ip="not-an-ip",
            resource_type="compute:instances",
            **{"tags-TOTAL_FORMS": "3", "tags-INITIAL_FORMS": "0", "tags-0-value": "<v>"},
        ),
    ]
    for data in cases:
        fast, slow = both(SimulatorForm, data, organization=organization, query=data)
        assert fast == slow


def test_the_resource_question_reads_as_django_renders_it(org: Org, project) -> None:
    resource = ResourceFactory(organization=org.organization, project=project)
    url = "/search/"
    for data in [
        None,
        question(org, resource=str(resource.pk)),
        question(org, resource_type="compute:instances", project=str(project.pk)),
        question(org, resource="not-a-resource", project_q="web"),
    ]:
        fast, slow = both(
            ResourceQuestionForm,
            data,
            organization=org.organization,
            project_search_url=url,
            query=data,
        )
        assert fast == slow


def pick_context(**widget: Any) -> dict[str, Any]:
    defaults = {
        "name": "project",
        "attrs": {"id": "id_project"},
        "input_type": "radio",
        "fixed": [],
        "chosen": [],
        "matches": [],
        "q": "",
        "search_url": "/o/1/pick/projects/",
        "placeholder": "Type a project name",
        "limit": PICK_MATCHES,
    }
    return {"widget": {**defaults, **widget}}


@pytest.mark.parametrize(
    "widget",
    [
        {},
        {"search_url": "", "attrs": {}},  # no search endpoint; the name as id
        {"fixed": [("", "No project", True), ("me", 'You "<me>"', False)]},
        {"chosen": [(1, "Chosen <one>")], "q": 'we"b', "input_type": "checkbox"},
        {"q": "nothing & else"},  # no match
        {"chosen": [(1, "one")], "q": "x"},  # nothing else matches
        {"matches": [(n, f"project {n}") for n in range(PICK_MATCHES)], "q": "p"},  # a full page
        {"matches": [(7, "seven")], "placeholder": "<type>", "name": "members"},
    ],
)
def test_a_search_pick_reads_as_its_template(widget: dict[str, Any]) -> None:
    context = pick_context(**widget)
    expected = loader.render_to_string("includes/_search_pick.html", context)
    assert search_pick_html(context["widget"]) == expected


def test_a_search_pick_widget_renders_its_chosen_row_and_search(org: Org, project) -> None:
    field = forms.ModelChoiceField(
        queryset=org.organization.projects.all(),
        widget=SearchPick(placeholder="Type a project name", search_url="/pick/"),
    )
    html = field.widget.render("project", str(project.pk), {"id": "id_project"})
    assert 'hx-get="/pick/"' in html
    assert f'value="{project.pk}" checked> Web &quot;&lt;front&gt;&quot;' in html


def test_grant_and_summary_rows_escape_and_link() -> None:
    permission = EffectivePermission(
        action="compute:instances:read",
        scope='project "<web>"',
        via="rule 1 of policy <p>",
        conditional=True,
        condition='ip == "<x>"',
        limited_by=("rule 2 of policy <d>",),
    )
    row = grant_rows_html([permission])
    assert "<td>Project &quot;&lt;web&gt;&quot;</td>" in row
    assert "<td>Rule 1 of policy &lt;p&gt;</td>" in row
    assert "<code>ip == &quot;&lt;x&gt;&quot;</code>" in row
    assert "May be denied by rule 2 of policy &lt;d&gt;</span>" in row
    held = HeldAction("compute:instances:read", 2, always=False, limited=True, where="<all>")
    summary = held_rows_html([held])
    assert 'href="?action=compute%3Ainstances%3Aread#grants"' in summary
    assert 'hx-get="?action=compute%3Ainstances%3Aread" hx-target="#grants"' in summary
    assert "<td>&lt;all&gt;</td><td>2</td>" in summary
    assert "Conditional</span> only<br>" in summary


def test_the_simulator_queries_stay_flat_as_policies_grow(org: Org) -> None:
    organization = org.organization
    project = ProjectFactory(organization=organization)
    url = reverse("iamtools:simulator", args=[organization.pk])
    query = f"?principal=user:{org.tech.pk}&action=compute:instances:read&project={project.pk}"
    client = org.client_for("owner")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url + query)
        assert response.status_code == 200
        return len(captured)

    grant(org.tech, actions=["compute:instances:read"], projects=[project])
    client.get(url + query)  # warm the compiled rules
    few = queries()
    for _ in range(15):
        grant(org.tech, actions=["compute:instances:read"], projects=[project])
    client.get(url + query)
    assert queries() == few


def test_the_simulator_reads_the_project_chosen_once(org: Org) -> None:
    organization = org.organization
    project = ProjectFactory(organization=organization, name="web-front")
    url = reverse("iamtools:simulator", args=[organization.pk])
    query = f"?principal=user:{org.tech.pk}&action=compute:instances:read&project={project.pk}"
    client = org.client_for("owner")
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url + query)
    assert response.status_code == 200
    # Cleaned by the form, then shown checked by its picker without another query.
    assert f'value="{project.pk}" checked> web-front' in response.content.decode()
    reads = [q["sql"] for q in captured if 'FROM "organizations_project"' in q["sql"]]
    assert len(reads) == 1, reads


# The template loops the simulator's fields and the tag rows were rendered by.
FIELDS_LOOP = """{% for field in form.plain_fields %}
    {% if field.name == "action" %}
    {{ field.label_tag }}{{ field.errors }}<select name="{{ field.html_name }}" required id="{{ field.auto_id }}"{% if field.errors %} aria-invalid="true"{% endif %}>
{{ action_options }}
</select>
    {% else %}{{ field.as_field_group }}{% endif %}
    {% endfor %}"""  # noqa: E501
TAG_ROWS_LOOP = """{% for row in form.tags %}
        <tr>
          <td><label class="visually-hidden" for="{{ row.key.id_for_label }}">Key {{ forloop.counter }}</label>{{ row.key }}{{ row.key.errors }}</td>
          <td><label class="visually-hidden" for="{{ row.value.id_for_label }}">Value {{ forloop.counter }}</label>{{ row.value }}{{ row.value.errors }}</td>
        </tr>
        {% endfor %}"""  # noqa: E501


def test_the_simulator_fields_and_tag_rows_read_as_their_template_loops(org: Org) -> None:
    engine = engines["django"]
    for data in [
        None,
        question(
            org,
            principal=f"user:{org.tech.pk}",
            action="compute:instances:read",
            ip="<bad>",
            **{"tags-TOTAL_FORMS": "3", "tags-INITIAL_FORMS": "0", "tags-1-key": 'a"b'},
        ),
        question(org, action="not:an:action", **{"tags-TOTAL_FORMS": "1", "tags-0-value": "v"}),
    ]:
        form = SimulatorForm(data, organization=org.organization, query=data)
        if data is not None:
            assert not form.is_valid()
        context = {"form": form, "action_options": action_options_html(form["action"].value())}
        assert simulator_fields_html(form) == engine.from_string(FIELDS_LOOP).render(context)
        assert form.tag_rows_html() == engine.from_string(TAG_ROWS_LOOP).render(context)
    assert 'aria-invalid="true"' in simulator_fields_html(form)  # the action flagged
