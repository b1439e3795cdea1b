from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from organizations.models import APIKey, Application, Organization
from organizations.services import applications as application_services
from organizations.services import groups as group_services
from policies.authz import principal_of
from policies.evaluator import CompiledRuleSet, RequestFacts, decide
from policies.models import Policy
from policies.selectors.rules import compile_rules_for
from tests.accounts.helpers import expire_sudo
from tests.conftest import Org, assert_access
from tests.factories import (
    APIKeyFactory,
    ApplicationFactory,
    GroupFactory,
    PolicyAttachmentFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def url(name: str, org: Org, *args: object) -> str:
    return reverse(f"organizations:{name}", args=[org.organization.pk, *args])


def version(org: Org) -> int:
    return Organization.objects.get(pk=org.organization.pk).authz_version


def app_of(org: Org, name: str = "ci-deployer", **kwargs: object) -> Application:
    return ApplicationFactory(organization=org.organization, name=name, **kwargs)


# ------------------------------------------------------------------------- access


def test_read_pages_follow_the_role_matrix(org: Org) -> None:
    application = app_of(org)
    readers = {"owner": 200, "tech": 200, "readonly": 200, "billing": 403, "outsider": 404}
    assert_access(org, "get", url("application_list", org), readers)
    assert_access(org, "get", url("application_detail", org, application.pk), readers)


@pytest.mark.parametrize(
    ("name", "action", "data"),
    [
        ("application_create", "iam:applications:create", {"name": "x"}),
        ("application_update", "iam:applications:update", {"name": "renamed"}),
        ("application_delete", "iam:applications:delete", {"confirm_name": "ci-deployer"}),
        ("application_group_add", "iam:applications:update", {}),
        ("application_group_remove", "iam:applications:update", {}),
    ],
)
def test_writes_are_refused_naming_the_permission(
    org: Org, name: str, action: str, data: dict[str, str]
) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization)
    group.applications.add(application)
    data = {"group": str(group.pk), **data}
    args = {
        "application_create": (),
        "application_group_remove": (application.pk, group.pk),
    }.get(name, (application.pk,))
    target = url(name, org, *args)
    for who in ("tech", "readonly", "billing"):
        response = org.client_for(who).post(target, data)
        assert response.status_code == 403, who
        assert action in response.content.decode()
    assert org.client_for("outsider").post(target, data).status_code == 404
    application.refresh_from_db()
    assert application.name == "ci-deployer"
    assert Application.objects.count() == 1
    assert group.applications.filter(pk=application.pk).exists()


def test_another_organizations_application_is_404(org: Org, owner_client: Client) -> None:
    foreign = ApplicationFactory()
    for name in ("application_detail", "application_update", "application_delete"):
        assert owner_client.get(url(name, org, foreign.pk)).status_code == 404
    response = owner_client.post(
        url("application_delete", org, foreign.pk), {"confirm_name": foreign.name}
    )
    assert response.status_code == 404
    assert Application.objects.filter(pk=foreign.pk).exists()


# --------------------------------------------------------------------------- list


def test_list_has_an_empty_state_and_hides_create_from_readers(org: Org) -> None:
    body = org.client_for("readonly").get(url("application_list", org)).content.decode()
    assert "No applications yet" in body
    assert "Create application" not in body
    assert (
        "Create application"
        in org.client_for("owner").get(url("application_list", org)).content.decode()
    )


def test_list_shows_counts_and_only_this_organization(org: Org, owner_client: Client) -> None:
    application = app_of(org, "backup")
    GroupFactory(organization=org.organization).applications.add(application)
    APIKeyFactory.create_batch(2, bearer_application=application)
    ApplicationFactory(name="elsewhere")
    response = owner_client.get(url("application_list", org))
    rows = list(response.context["page"])
    assert [(a.name, a.group_count, a.key_count) for a in rows] == [("backup", 1, 2)]
    assert "elsewhere" not in response.content.decode()


def test_list_runs_the_same_queries_for_2_or_40_applications(
    org: Org, django_assert_max_num_queries
) -> None:
    client = org.client_for("tech")

    def add(count: int) -> None:
        for _ in range(count):
            application = ApplicationFactory(organization=org.organization)
            APIKeyFactory(bearer_application=application)
            GroupFactory(organization=org.organization).applications.add(application)

    add(2)
    with django_assert_max_num_queries(25) as small:
        client.get(url("application_list", org))
    add(38)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url("application_list", org))
    assert response.context["page"].paginator.count == 40
    assert len(response.context["page"]) == 25


# ------------------------------------------------------------------------- create


def test_create_with_a_plain_post_redirects_to_the_application(
    org: Org, owner_client: Client
) -> None:
    response = owner_client.post(
        url("application_create", org), {"name": " backup ", "description": "Nightly"}
    )
    application = Application.objects.get(organization=org.organization)
    assert response.status_code == 302
    assert response.url == url("application_detail", org, application.pk)
    assert (application.name, application.description) == ("backup", "Nightly")
    assert application.created_by == org.owner.user
    event = AuditEvent.objects.get(action="iam.application.created")
    assert event.target_id == str(application.pk) and event.actor_user == org.owner.user


def test_create_with_htmx_asks_for_a_redirect(org: Org, owner_client: Client) -> None:
    response = owner_client.post(url("application_create", org), {"name": "backup"}, headers=HTMX)
    application = Application.objects.get(organization=org.organization)
    assert response.headers["HX-Redirect"] == url("application_detail", org, application.pk)


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_duplicate_names_in_any_case_are_refused(
    org: Org, owner_client: Client, headers: dict[str, str]
) -> None:
    app_of(org, "Backup")
    response = owner_client.post(
        url("application_create", org), {"name": "BACKUP"}, headers=headers
    )
    assert response.status_code == (200 if headers else 400)
    body = response.content.decode()
    assert "An application named &quot;BACKUP&quot; already exists." in body
    if headers:
        assert body.lstrip().startswith('<div id="applications">')
    assert Application.objects.count() == 1


def test_the_same_name_is_fine_in_another_organization(org: Org) -> None:
    ApplicationFactory(name="backup")
    created = application_services.application_create(
        organization=org.organization, name="backup", actor=org.owner.user
    )
    assert created.organization == org.organization


def test_blank_name_is_refused(org: Org, owner_client: Client) -> None:
    response = owner_client.post(url("application_create", org), {"name": "   "})
    assert response.status_code == 400
    assert not Application.objects.exists()


# ------------------------------------------------------------------------- update


def test_inline_rename_returns_the_details_card(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    edit = owner_client.get(url("application_update", org, application.pk), headers=HTMX)
    assert (
        edit.content.decode()
        .lstrip()
        .startswith('<section id="application-details" class="card editing"')
    )
    response = owner_client.post(
        url("application_update", org, application.pk),
        {"name": "deployer", "description": "Deploys from CI"},
        headers=HTMX,
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="application-details" class="card">')
    assert "deployer" in body and "<html" not in body
    application.refresh_from_db()
    assert (application.name, application.description) == ("deployer", "Deploys from CI")
    event = AuditEvent.objects.get(action="iam.application.updated")
    assert event.data["before"]["name"] == "ci-deployer"
    # Cancel: the details card again.
    cancel = owner_client.get(url("application_detail", org, application.pk), headers=HTMX)
    assert cancel.content.decode().lstrip().startswith('<section id="application-details"')


def test_plain_rename_and_a_refused_duplicate(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    app_of(org, "taken")
    response = owner_client.post(url("application_update", org, application.pk), {"name": "TAKEN"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    response = owner_client.post(
        url("application_update", org, application.pk), {"name": "deployer"}
    )
    assert response.url == url("application_detail", org, application.pk)
    application.refresh_from_db()
    assert application.name == "deployer"


def test_saving_unchanged_values_records_nothing(org: Org) -> None:
    application = app_of(org, description="d")
    application_services.application_update(
        application=application, name="ci-deployer", description="d", actor=org.owner.user
    )
    assert not AuditEvent.objects.filter(action="iam.application.updated").exists()


# ------------------------------------------------------------------------- delete


def test_delete_needs_the_exact_name_and_takes_the_keys(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    APIKeyFactory.create_batch(2, bearer_application=application)
    page = owner_client.get(url("application_delete", org, application.pk)).content.decode()
    assert "Its 2 API keys stop working at once" in page
    response = owner_client.post(
        url("application_delete", org, application.pk), {"confirm_name": "CI-DEPLOYER"}
    )
    assert response.status_code == 400
    assert "Type the application name exactly" in response.content.decode()
    assert APIKey.objects.count() == 2
    before = version(org)
    response = owner_client.post(
        url("application_delete", org, application.pk), {"confirm_name": "ci-deployer"}
    )
    assert response.url == url("application_list", org)
    assert not Application.objects.exists() and not APIKey.objects.exists()
    assert version(org) == before + 1
    event = AuditEvent.objects.get(action="iam.application.deleted")
    assert len(event.data["before"]["api_keys"]) == 2


# ------------------------------------------------------------------------- groups


def test_add_and_remove_a_group_inline(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization, name="deployers")
    policy = Policy.objects.get(name="BillingReadOnly")
    PolicyAttachmentFactory(
        policy=policy, membership=None, group=group, organization=org.organization
    )
    principal = principal_of(application)

    def allowed() -> bool:
        facts = RequestFacts(ip="127.0.0.1", user_agent="", time=timezone.now(), mfa=False)
        rules: CompiledRuleSet = compile_rules_for(application)
        return decide(
            principal=principal,
            rules=rules,
            action="billing:invoices:list",
            project_id=None,
            request=facts,
        ).allowed

    assert not allowed()
    before = version(org)
    response = owner_client.post(
        url("application_group_add", org, application.pk), {"group": str(group.pk)}, headers=HTMX
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="application-groups"')
    assert "deployers" in body
    assert group.applications.filter(pk=application.pk).exists()
    assert version(org) == before + 1
    assert allowed()
    event = AuditEvent.objects.get(action="iam.group.application_added")
    assert event.target_id == str(group.pk)
    assert event.data["application"]["id"] == str(application.pk)

    response = owner_client.post(url("application_group_remove", org, application.pk, group.pk))
    assert response.url == url("application_detail", org, application.pk)
    assert not group.applications.exists()
    assert version(org) == before + 2
    assert not allowed()
    assert AuditEvent.objects.filter(action="iam.group.application_removed").exists()


def test_joining_a_group_asks_for_a_fresh_confirmation(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization)
    expire_sudo(owner_client)
    response = owner_client.post(
        url("application_group_add", org, application.pk), {"group": str(group.pk)}
    )
    assert response["Location"].startswith(reverse("accounts:confirm"))
    assert not group.applications.exists()


def test_group_picker_searches_groups_the_application_is_not_in(
    org: Org, owner_client: Client
) -> None:
    """One picker (iamportal.widgets.pick_form): its search answers radios named `group`,
    the field the add form posts; never a list on a plain view of the page."""
    application = app_of(org)
    deployers = GroupFactory(organization=org.organization, name="deployers")
    member_of = GroupFactory(organization=org.organization, name="deploy-admins")
    member_of.applications.add(application)
    auditors = GroupFactory(organization=org.organization, name="auditors")
    GroupFactory(name="deploy-elsewhere")
    page = url("application_detail", org, application.pk)
    body = owner_client.get(page).content.decode()
    search = url("pick_application_groups", org, application.pk)
    assert 'name="group_q"' in body and f'hx-get="{search}"' in body
    assert str(deployers.pk) not in body and str(auditors.pk) not in body
    assert 'Preview<span class="visually-hidden"> adding to the group' in body
    params = {"name": "group", "id": "add-group-group", "group_q": "DEPLOY"}
    found = owner_client.get(search, params, headers=HTMX).content.decode()
    assert f'name="group" value="{deployers.pk}"' in found
    assert "deploy-admins" not in found and "auditors" not in found and "elsewhere" not in found
    # Without scripts the page's search-pick form reloads it with `group_q`.
    body = owner_client.get(page, {"group_q": "audit"}).content.decode()
    assert f'name="group" value="{auditors.pk}"' in body and str(deployers.pk) not in body


def test_a_picked_group_is_added_without_htmx_and_previewed(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization, name="deployers")
    add = url("application_group_add", org, application.pk)
    shown = owner_client.post(add, {"group": str(group.pk), "preview": "1"}, headers=HTMX)
    assert shown.status_code == 200 and "Preview: add ci-deployer to deployers" in (
        shown.content.decode()
    )
    assert not group.applications.exists()
    response = owner_client.post(add, {"group": str(group.pk)})
    assert response.status_code == 302
    assert response["Location"] == url("application_detail", org, application.pk)
    assert list(group.applications.all()) == [application]


def test_a_group_the_service_refuses_stays_chosen_with_the_message(
    org: Org, owner_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization, name="deployers")

    def refuse(**kwargs: object) -> bool:
        raise ValidationError("Not this one.")

    monkeypatch.setattr(group_services, "group_add_application", refuse)
    response = owner_client.post(
        url("application_group_add", org, application.pk), {"group": str(group.pk)}
    )
    body = response.content.decode()
    assert response.status_code == 400 and "Not this one." in body
    assert f'name="group" value="{group.pk}" checked' in body


def test_adding_a_foreign_or_unknown_group_is_refused(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    foreign = GroupFactory()
    for value in (str(foreign.pk), "not-a-uuid", ""):
        response = owner_client.post(
            url("application_group_add", org, application.pk), {"group": value}
        )
        body = response.content.decode()
        assert response.status_code == 400 and 'name="group_q"' in body
        assert "Choose a group of this organization" in body or not value
    assert not foreign.applications.exists()
    response = owner_client.post(url("application_group_remove", org, application.pk, foreign.pk))
    assert response.status_code == 404


def test_services_refuse_a_group_of_another_organization(org: Org) -> None:
    application = app_of(org)
    with pytest.raises(ValidationError):
        group_services.group_add_application(
            group=GroupFactory(), application=application, actor=org.owner.user
        )


def test_adding_twice_is_idempotent(org: Org) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization)
    assert group_services.group_add_application(
        group=group, application=application, actor=org.owner.user
    )
    before = version(org)
    assert not group_services.group_add_application(
        group=group, application=application, actor=org.owner.user
    )
    assert version(org) == before
    assert AuditEvent.objects.filter(action="iam.group.application_added").count() == 1


# ------------------------------------------------------------------------- detail


def test_detail_shows_groups_policies_and_keys(org: Org, owner_client: Client) -> None:
    application = app_of(org)
    group = GroupFactory(organization=org.organization, name="deployers")
    group.applications.add(application)
    key = APIKeyFactory(bearer_application=application, description="from CI")
    policy = Policy.objects.get(name="IAMReadOnly")
    PolicyAttachmentFactory(
        policy=policy, membership=None, application=application, organization=org.organization
    )
    body = owner_client.get(url("application_detail", org, application.pk)).content.decode()
    assert "deployers" in body
    assert key.access_key in body and "from CI" in body
    assert 'id="principal-policies"' in body and "IAMReadOnly" in body
    assert "Create an API key" in body and f"?application={application.pk}" in body
    reader = org.client_for("readonly").get(url("application_detail", org, application.pk))
    text = reader.content.decode()
    assert "Rename or describe" not in text and "Attach policy" not in text
    assert "Create an API key" not in text and "Revoke" not in text
