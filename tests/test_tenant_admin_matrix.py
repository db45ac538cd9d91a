"""The scope matrix in the tenant admin: validation against the scope registry, the write-tool
no-auth override, and the audit trail."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from declarations.tools import all_tools
from mcp_tools.models import ToolPolicy, ToolPolicyChange
from tests.conftest import PASSWORD
from tests.factories import application


@pytest.fixture
def admin_client(client):
    client.post("/t/acme/admin/login/", {"username": "admin@acme.test", "password": PASSWORD})
    return client


def _form(policy: ToolPolicy, **changes) -> dict:
    data = {"enabled": "on" if policy.enabled else "", "scopes": policy.scopes, "noauth": "", "allow_noauth_write": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


@pytest.mark.django_db
def test_matrix_lists_every_tool_with_code_defaults(admin_client):
    with schema_context("acme"):  # the rows exist from the tenant's migrate, before any admin visit
        policies = {p.tool_name: p for p in ToolPolicy.objects.all()}
    assert set(policies) == set(all_tools())
    assert policies["crm_create_note"].scopes == "crm.write" and policies["crm_create_note"].enabled
    assert policies["tenant_info"].noauth and not policies["tenant_info"].enabled  # no-auth is opt-in
    page = admin_client.get("/t/acme/admin/mcp_tools/toolpolicy/")
    assert page.status_code == 200
    assert all(f">{name}<" in page.content.decode() for name in all_tools())


@pytest.mark.django_db
def test_matrix_list_only_reads(admin_client):
    with schema_context("acme"):
        ToolPolicy.objects.filter(tool_name="tenant_info").delete()
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get("/t/acme/admin/mcp_tools/toolpolicy/").status_code == 200
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    assert not [sql for sql in writes if ToolPolicy._meta.db_table in sql]
    with schema_context("acme"):
        assert not ToolPolicy.objects.filter(tool_name="tenant_info").exists()


@pytest.mark.django_db
def test_matrix_change_is_validated_and_audited(admin_client):
    with schema_context("acme"):
        note = ToolPolicy.objects.get(tool_name="crm_create_note")
    url = f"/t/acme/admin/mcp_tools/toolpolicy/{note.pk}/change/"

    unknown = admin_client.post(url, _form(note, scopes="crm.write crm.everything"))
    assert unknown.status_code == 200 and "unknown scopes: crm.everything" in unknown.content.decode()
    noauth_write = admin_client.post(url, _form(note, scopes="", noauth="on"))
    assert "needs the explicit override flag" in noauth_write.content.decode()

    ok = admin_client.post(url, _form(note, scopes="crm.write   crm.read"))
    assert ok.status_code == 302
    with schema_context("acme"):
        note.refresh_from_db()
        assert note.scopes == "crm.write crm.read"
        change = ToolPolicyChange.objects.filter(tool_name="crm_create_note").latest("changed_at")
        assert change.before["scopes"] == ["crm.write"] and change.after["scopes"] == ["crm.write", "crm.read"]
        assert change.changed_by.email == "admin@acme.test"

    override = admin_client.post(url, _form(note, scopes="", noauth="on", allow_noauth_write="on"))
    assert override.status_code == 302
    with schema_context("acme"):
        note.refresh_from_db()
        assert note.noauth and note.allow_noauth_write


@pytest.mark.django_db
def test_platform_admin_ending_a_membership_fires_the_revocation_event(
    client, django_user_model, django_capture_on_commit_callbacks
):
    from tenants.models import Membership
    from tenants.signals import membership_ended

    seen = []
    membership_ended.connect(lambda **kw: seen.append(kw["user"].email), weak=False, dispatch_uid="t")
    try:
        django_user_model.objects.create_superuser("root2@x.test", PASSWORD)
        client.post("/admin/login/", {"username": "root2@x.test", "password": PASSWORD})
        membership = Membership.objects.get(user__email="member@globex.test", tenant__schema_name="globex")
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/admin/tenants/membership/{membership.pk}/change/", {"role": "member"})
        assert response.status_code == 302, response.content[:500]
        membership.refresh_from_db()
        assert not membership.is_active and membership.ended_at is not None
        assert seen == ["member@globex.test"]
    finally:
        membership_ended.disconnect(dispatch_uid="t")


@pytest.mark.django_db
def test_challenge_channel_is_settable_per_client_and_tokens_are_masked(admin_client):
    from oauth2_provider.models import AccessToken


    with schema_context("acme"):
        app = application("Channel client", profile=True)
    page = admin_client.get(f"/t/acme/admin/oauth2_provider/application/{app.pk}/change/")
    assert page.status_code == 200 and "challenge_channel" in page.content.decode()
    assert admin_client.get("/t/acme/admin/oauth2_provider/accesstoken/").status_code == 200
    assert admin_client.get("/t/acme/admin/platform_oauth/consentgrant/").status_code == 200
    # the platform admin (public schema) does not offer the tenant-owned OAuth tables
    from django.contrib import admin

    assert not admin.site.is_registered(AccessToken)
