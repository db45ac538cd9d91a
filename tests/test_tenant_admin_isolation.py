"""A tenant admin sees and offers only their own tenant's users.

Every model registered on the tenant admin site is visited over HTTP as globex's admin: changelist,
search, add form (GET and a POST naming an acme user), every row's change page (GET and the same POST),
and the autocomplete and raw-id lookup endpoints. No page may contain an acme user's email, and no row
may end up pointing at an acme user. The models come from the site's registry, so a model registered
later is covered without touching this file (if it has a user field, give it a row below).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context
from oauth2_provider.models import Application

from connectors.models import ConnectedAccount
from identity.models import IdentityLink, IdentityProvider
from mcp_tools.models import ToolPolicyChange
from oauth.models import ClientBlock
from tenants.admin_site import _is_user_field, tenant_admin_site
from tenants.services import add_user
from tests.admin_http import AdminSession
from tests.conftest import PASSWORD
from tests.factories import application, upstream_provider
from tests.oauth_flow import obtain_tokens, signed_in

User = get_user_model()


def _user_fields(model) -> list[str]:
    return [f.name for f in model._meta.get_fields() if f.concrete and _is_user_field(f)]


def _admin_path(model, suffix: str = "") -> str:
    return f"{model._meta.app_label}/{model._meta.model_name}/{suffix}"


@pytest.fixture
def globex_rows(live, unique):
    """Rows of every kind in globex (a real OAuth flow for tokens and consent), and an acme-only user."""
    probe = f"probe-{unique}@acme.test"
    add_user(slug="acme", email=probe, password=PASSWORD, role="admin")
    acme_user = User.objects.get(email=probe)
    client, browser = signed_in(live.tenant("globex"), "member@globex.test")
    obtain_tokens(browser, client, scope="crm.read")
    member = User.objects.get(email="member@globex.test")
    with schema_context("globex"):
        owned = application(
            f"Owned {unique}", user=member, client_type="confidential", redirect_uris="https://owned.example/cb"
        )
        change = ToolPolicyChange.objects.create(tool_name=f"probe-{unique}", changed_by=member, after={})
        provider = upstream_provider(
            f"probe-{unique}", host="provider.example", display_name="Probe provider", client_id="probe"
        )
        ConnectedAccount.objects.create(user=member, provider=provider, external_account_label="probe")
        idp = IdentityProvider.objects.create(
            key=f"probe-{unique}", name="Probe IdP", issuer="https://idp.example", client_id="probe"
        )
        IdentityLink.objects.create(provider=idp, subject=f"probe-{unique}", user=member)
        block = ClientBlock.objects.create(kind="software_id", value=f"probe-{unique}", created_by=member)
    yield acme_user
    with schema_context("globex"):
        owned.delete()
        change.delete()
        provider.delete()
        idp.delete()
        block.delete()


def _acme_emails(extra: User) -> set[str]:
    emails = set(User.objects.filter(memberships__tenant__schema_name="acme").values_list("email", flat=True))
    globex = set(User.objects.filter(memberships__tenant__schema_name="globex").values_list("email", flat=True))
    emails -= globex
    assert extra.email in emails and "admin@acme.test" in emails
    return emails


def can_add(model) -> bool:
    """What the model's admin answers for globex's admin: some models are never added by hand."""
    from django.test import RequestFactory

    from tenants.models import Tenant

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(email="admin@globex.test")
    request.tenant = Tenant.objects.get(schema_name="globex")
    return tenant_admin_site._registry[model].has_add_permission(request)


def _assert_clean(response, emails: set[str], where: str) -> None:
    leaked = sorted(e for e in emails if e in response.text)
    assert not leaked, f"{where} shows acme users {leaked}"


def test_no_tenant_admin_page_shows_or_accepts_another_tenants_user(live, globex_rows):
    acme_user = globex_rows
    emails = _acme_emails(acme_user)
    admin = AdminSession(live.tenant("globex"), "admin@globex.test").login()
    assert len(tenant_admin_site._registry) >= 6

    for model in tenant_admin_site._registry:
        label = model._meta.label
        user_fields = _user_fields(model)
        with schema_context("globex"):
            pks = list(model._default_manager.values_list("pk", flat=True)[:5])
        if user_fields and not pks:
            pytest.fail(f"{label} has user fields {user_fields}: create a row of it in globex_rows")

        changelist = admin.get(_admin_path(model))
        assert changelist.status_code == 200, label
        _assert_clean(changelist, emails, f"{label} changelist")
        _assert_clean(admin.get(_admin_path(model), q="acme"), emails, f"{label} search")

        probe = {name: str(acme_user.pk) for name in user_fields}
        add = admin.get(_admin_path(model, "add/"))
        assert add.status_code == (200 if can_add(model) else 403), (label, add.status_code)
        _assert_clean(add, emails, f"{label} add form")
        if user_fields:  # a POST naming the acme user; Django's raw-id widget would echo its email
            posted = admin.post(_admin_path(model, "add/"), probe)
            _assert_clean(posted, emails, f"{label} add POST")
            if add.status_code == 403:
                assert posted.status_code == 403, label

        for pk in pks:
            change = admin.get(_admin_path(model, f"{pk}/change/"))
            assert change.status_code == 200, (label, pk)
            _assert_clean(change, emails, f"{label} {pk} change page")
            if user_fields:
                posted = admin.post(_admin_path(model, f"{pk}/change/"), probe)
                _assert_clean(posted, emails, f"{label} change POST")

        for name in user_fields:
            with schema_context("globex"):
                assert not model._default_manager.filter(**{name: acme_user}).exists(), f"{label}.{name} took acme"
            autocomplete = admin.get(
                "autocomplete/",
                app_label=model._meta.app_label,
                model_name=model._meta.model_name,
                field_name=name,
                term="acme",
            )
            assert autocomplete.status_code == 403, (label, name, autocomplete.status_code)
            _assert_clean(autocomplete, emails, f"{label}.{name} autocomplete")

    # the raw-id lookup popup for users does not exist on the tenant admin site
    popup = admin.get(_admin_path(User), _to_field="id", _popup="1", q="acme")
    assert popup.status_code == 404
    _assert_clean(popup, emails, "user lookup popup")


def test_application_user_field_offers_only_active_members(live, globex_rows, unique):
    from tenants.services import remove_user

    former = f"former-{unique}@globex.test"
    add_user(slug="globex", email=former, password=PASSWORD, role="member")
    remove_user(slug="globex", email=former)
    admin = AdminSession(live.tenant("globex"), "admin@globex.test").login()
    page = admin.get(_admin_path(Application, "add/"))
    assert page.status_code == 200
    select = re.search(r'<select name="user"[^>]*>(.*?)</select>', page.text, re.S)
    assert select, "the owner is a select of members, not a raw id"
    offered = {int(v) for v in re.findall(r'<option value="(\d+)"', select.group(1))}
    members = set(
        User.objects.filter(memberships__tenant__schema_name="globex", memberships__is_active=True).values_list(
            "pk", flat=True
        )
    )
    assert offered == members and User.objects.get(email=former).pk not in offered
