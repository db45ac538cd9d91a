"""The connections REST API over real HTTP: a member's session (CSRF) or a platform token with the
``connections`` scope; all accounts only for admins; refresh and disconnect; never a token."""

from __future__ import annotations

import httpx
import pytest
from django_tenants.utils import schema_context

from connectors.models import Credential
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.oauth_flow import obtain_tokens, signed_in

pytestmark = pytest.mark.timeout(90)


def bearer(live, email: str, scope: str) -> dict[str, str]:
    client, browser = signed_in(live.tenant("acme"), email)
    return {"Authorization": f"Bearer {obtain_tokens(browser, client, scope=scope)['access_token']}"}


def secrets_of(key: str) -> list[str]:
    with schema_context("acme"):
        return [
            value
            for credential in Credential.objects.filter(account__provider__key=key)
            for value in (credential.access_token, credential.refresh_token)
            if value
        ]


def test_session_list_refresh_and_disconnect(live, oidc):
    key = add_oidc_provider(oidc)
    browser = ConnectBrowser(live, oidc)
    assert browser.connect(key).status_code == 302
    api = browser.url("api/connections/")
    listing = browser.http.get(api)
    assert listing.status_code == 200
    mine = [c for c in listing.json()["connections"] if c["provider"] == key]
    assert len(mine) == 1 and mine[0]["status"] == "active" and mine[0]["external_account_id"] == "alice"
    assert mine[0]["user"] == "member@acme.test"
    assert not any(s in listing.text for s in secrets_of(key))

    no_csrf = browser.http.post(browser.url(f"api/connections/{key}/refresh/"))
    assert no_csrf.status_code == 403  # session writes need the CSRF token
    csrf = {"X-CSRFToken": browser.http.cookies["csrftoken"], "Referer": api}
    before = oidc.refresh_grants()
    refreshed = browser.http.post(browser.url(f"api/connections/{key}/refresh/"), headers=csrf)
    assert refreshed.status_code == 200 and refreshed.json()["last_refreshed_at"]
    assert oidc.refresh_grants() == before + 1
    assert not any(s in refreshed.text for s in secrets_of(key))

    revoked_before = oidc.stats()["revocations"]
    gone = browser.http.delete(browser.url(f"api/connections/{key}/"), headers=csrf)
    assert gone.status_code == 200 and gone.json()["status"] == "revoked"
    assert oidc.stats()["revocations"] == revoked_before + 2
    assert browser.http.delete(browser.url("api/connections/nope/"), headers=csrf).status_code == 404


def test_admins_see_all_and_mcp_tokens_are_refused_by_audience(live, oidc):
    key = add_oidc_provider(oidc)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    api = live.tenant_url("acme", "api/connections/")
    assert httpx.get(api).status_code == 401
    # a platform token for the tenant's MCP resource (RFC 8707) is refused here (tests/connectors/test_api_audience.py)
    assert httpx.get(api, headers=bearer(live, "member@acme.test", "connections")).status_code == 401
    member = ConnectBrowser(live, oidc)
    assert member.http.get(api, params={"all": "1"}).status_code == 403
    admin = ConnectBrowser(live, oidc, email="admin@acme.test")
    everyone = admin.http.get(api, params={"all": "1"})
    assert everyone.status_code == 200
    assert any(c["provider"] == key and c["user"] == "member@acme.test" for c in everyone.json()["connections"])
    assert not any(s in everyone.text for s in secrets_of(key))
    own = admin.http.get(api)
    assert {c["user"] for c in own.json()["connections"]} <= {"admin@acme.test"}
