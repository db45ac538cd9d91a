"""Tokens and consents in the tenant admin are view and revoke only: no add, no
change, no raw delete, the token value and its checksum never shown, and revoking (an admin action
that calls ``oauth.services``) makes the token stop working at the MCP endpoint and the token endpoint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken, RefreshToken

from oauth.models import ConsentGrant
from tests.admin_http import AdminSession
from tests.mcp_raw import call
from tests.oauth_flow import Client, obtain_tokens, refresh, signed_in


def _sum(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Issued:
    client: Client
    access: str
    refresh: str
    access_row: AccessToken
    refresh_row: RefreshToken
    consent: ConsentGrant
    mcp: str


@pytest.fixture
def issued(live) -> Issued:
    acme = live.tenant("acme")
    client, browser = signed_in(acme, "member@acme.test")
    tokens = obtain_tokens(browser, client, scope="crm.read")
    with schema_context("acme"):
        access_row = AccessToken.objects.get(token_checksum=_sum(tokens["access_token"]))
        refresh_row = RefreshToken.objects.get(token_checksum=_sum(tokens["refresh_token"]))
        consent = ConsentGrant.objects.get(user__email="member@acme.test", application__client_id=client.client_id)
    issued = Issued(client, tokens["access_token"], tokens["refresh_token"], access_row, refresh_row, consent, acme.mcp)
    assert call(issued.mcp, issued.access, "crm_search_contacts").status_code == 200
    return issued


@pytest.fixture
def admin(live) -> AdminSession:
    return AdminSession(live.tenant("acme"), "admin@acme.test").login()


def _path(model, suffix: str = "") -> str:
    return f"{model._meta.app_label}/{model._meta.model_name}/{suffix}"


def test_tokens_and_consents_cannot_be_added_changed_or_deleted(admin, issued):
    member = get_user_model().objects.get(email="member@acme.test")
    minted = "chosen-by-the-tenant-admin-0123456789"
    forged = {
        "user": member.pk,
        "application": issued.access_row.application_id,
        "token": minted,
        "token_checksum": _sum(minted),
        "scope": "crm.read crm.write crm.admin",
        "expires_0": "2099-01-01",
        "expires_1": "00:00:00",
    }
    rows = ((AccessToken, issued.access_row), (RefreshToken, issued.refresh_row), (ConsentGrant, issued.consent))
    for model, row in rows:
        label = model._meta.label
        assert admin.get(_path(model, "add/")).status_code == 403, label
        assert admin.post(_path(model, "add/"), forged).status_code == 403, label
        assert admin.post(_path(model, f"{row.pk}/change/"), forged).status_code == 403, label
        assert admin.get(_path(model, f"{row.pk}/delete/")).status_code == 403, label
        assert admin.post(_path(model, f"{row.pk}/delete/"), {"post": "yes"}).status_code == 403, label
        view = admin.get(_path(model, f"{row.pk}/change/"))
        listing = admin.get(_path(model))
        assert view.status_code == 200 and listing.status_code == 200, label
        assert "member@acme.test" in view.text  # the page really shows the row
        for page in (view.text, listing.text):
            for secret in (issued.access, issued.refresh, _sum(issued.access), _sum(issued.refresh)):
                assert secret not in page, label
            assert "checksum" not in page.lower(), label
            assert 'name="_save"' not in page, label
            assert "delete_selected" not in page, label

    with schema_context("acme"):
        assert not AccessToken.objects.filter(token_checksum=_sum(minted)).exists()
        assert not RefreshToken.objects.filter(token_checksum=_sum(minted)).exists()
        unchanged = AccessToken.objects.get(pk=issued.access_row.pk)
        assert unchanged.scope == "crm.read" and unchanged.token_checksum == _sum(issued.access)
        assert ConsentGrant.objects.get(pk=issued.consent.pk).scope == "crm.read"
    assert call(issued.mcp, issued.access, "crm_search_contacts").status_code == 200


def _run_action(admin: AdminSession, model, action: str, pk: int):
    return admin.post(_path(model), {"action": action, "_selected_action": [str(pk)], "index": "0"})


@pytest.mark.parametrize(
    ("model", "action"),
    [(AccessToken, "revoke_tokens"), (RefreshToken, "revoke_tokens"), (ConsentGrant, "revoke_consents")],
    ids=["access-token", "refresh-token", "consent"],
)
def test_revoke_action_ends_the_session(admin, issued, model, action):
    row = {AccessToken: issued.access_row, RefreshToken: issued.refresh_row, ConsentGrant: issued.consent}[model]
    response = _run_action(admin, model, action, row.pk)
    assert response.status_code == 302, response.text[:500]
    assert "Revoked 1" in admin.get(_path(model)).text

    refused = call(issued.mcp, issued.access, "crm_search_contacts")
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]
    again = refresh(issued.client, issued.refresh)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    with schema_context("acme"):
        assert not AccessToken.objects.filter(pk=issued.access_row.pk).exists()
        assert RefreshToken.objects.get(pk=issued.refresh_row.pk).revoked is not None
        assert ConsentGrant.objects.filter(pk=issued.consent.pk).exists() == (model is not ConsentGrant)


def test_revoking_a_token_revokes_its_whole_refresh_family(admin, issued):
    rotated = refresh(issued.client, issued.refresh)
    assert rotated.status_code == 200
    current = rotated.json()
    with schema_context("acme"):
        tip = RefreshToken.objects.get(token_checksum=_sum(current["refresh_token"]))
    # revoking the first refresh token (already rotated) ends the session of its successor too
    assert _run_action(admin, RefreshToken, "revoke_tokens", issued.refresh_row.pk).status_code == 302
    assert call(issued.mcp, current["access_token"], "crm_search_contacts").status_code == 401
    assert refresh(issued.client, current["refresh_token"]).status_code == 400
    with schema_context("acme"):
        assert RefreshToken.objects.get(pk=tip.pk).revoked is not None


def test_tenant_model_admin_cannot_be_listed_before_a_library_admin():
    from django.core.exceptions import ImproperlyConfigured
    from oauth2_provider import admin as dot_admin

    from tenants.admin_site import TenantModelAdmin

    with pytest.raises(ImproperlyConfigured, match="has_add_permission"):
        type("Misordered", (TenantModelAdmin, dot_admin.access_token_admin_class), {})
