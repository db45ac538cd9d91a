"""The ``connector_profile`` tool over the real MCP endpoint: a missing or revoked upstream account is
a ``CONNECTOR_REAUTH_REQUIRED`` tool result with the connect URL (HTTP 200, no challenge), and the
retried call works after the user (re)connects."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors.models import ConnectedAccount, Credential
from tests.connectors.conftest import ConnectBrowser, add_oidc_provider
from tests.mcp_raw import call
from tests.support.mcp import platform_token, result_of

pytestmark = pytest.mark.timeout(90)


def _refusal(url: str, token: str, key: str) -> dict:
    """``connector_profile`` of ``key`` when it must fail: its structured content."""
    result = result_of(call(url, token, "connector_profile", {"provider": key}))
    assert result["isError"] is True
    return result["structuredContent"]


def _refused(key: str, klass: str, reason: str, **more: str) -> dict:
    return {"class": klass, "provider": key, "reason": reason, **more, "retryable": True}


def test_missing_account_asks_to_connect_then_works(live, oidc):
    key = add_oidc_provider(oidc)
    url = live.tenant_url("acme", "mcp")
    token = platform_token(live)
    connect_url = f"{settings.PUBLIC_BASE_URL}/t/acme/connections/{key}/connect/"
    expected = _refused(key, "CONNECTOR_REAUTH_REQUIRED", "not_connected", connect_url=connect_url)
    assert _refusal(url, token, key) == expected
    browser = ConnectBrowser(live, oidc)
    browser.steer(test_account="carol")
    assert browser.connect(key).status_code == 302
    done = result_of(call(url, token, "connector_profile", {"provider": key}))
    assert done["isError"] is False
    assert done["structuredContent"]["profile"]["sub"] == "carol"
    with schema_context("acme"):
        credential = Credential.objects.get(account__provider__key=key, account__user__email="member@acme.test")
    assert credential.access_token not in str(done) and credential.refresh_token not in str(done)


def test_upstream_revocation_gives_reauth_then_reconnect_works(live, oidc):
    key = add_oidc_provider(oidc)
    url = live.tenant_url("acme", "mcp")
    token = platform_token(live)
    browser = ConnectBrowser(live, oidc)
    assert browser.connect(key).status_code == 302
    with schema_context("acme"):
        account = ConnectedAccount.objects.get(provider__key=key, user__email="member@acme.test")
        credential = Credential.objects.get(account=account)
    assert oidc.refresh_directly(credential.refresh_token).status_code == 200  # rotated elsewhere: ours is dead
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = result_of(call(url, token, "connector_profile", {"provider": key}))
    assert refused["isError"] is True
    assert refused["structuredContent"]["class"] == "CONNECTOR_REAUTH_REQUIRED"
    assert refused["structuredContent"]["reason"] == "invalid_grant"
    assert browser.connect(key).status_code == 302  # the user reconnects on the connect page
    again = result_of(call(url, token, "connector_profile", {"provider": key}))
    assert again["isError"] is False and again["structuredContent"]["profile"]["sub"] == "alice"


def test_unavailable_provider_is_a_retryable_connector_result(live, oidc):
    key = add_oidc_provider(oidc)
    url = live.tenant_url("acme", "mcp")
    token = platform_token(live)
    assert ConnectBrowser(live, oidc).connect(key).status_code == 302
    with schema_context("acme"):
        ConnectedAccount.objects.filter(provider__key=key).update(expires_at=timezone.now() - timedelta(seconds=1))
    oidc.fail_next(1, status=503, retry_after="3600")  # beyond the cap: no waiting, no retry
    assert _refusal(url, token, key) == _refused(key, "CONNECTOR_UNAVAILABLE", "provider_unavailable")


def test_the_tool_needs_the_connections_scope(live, oidc):
    key = add_oidc_provider(oidc)
    response = call(
        live.tenant_url("acme", "mcp"), platform_token(live, "crm.read"), "connector_profile", {"provider": key}
    )
    assert response.status_code == 403 and 'scope="connections crm.read"' in response.headers["www-authenticate"]


def test_connect_url_is_the_tenants_canonical_url_in_domain_mode(live, oidc, settings, unique):
    """With a primary domain the connect link is on that domain (the platform's scheme and port), and
    that URL really is the tenant's connect page there; without one it is PUBLIC_BASE_URL/t/<slug>."""
    from tenants.models import Domain, Tenant

    settings.PUBLIC_BASE_URL = live.url  # the live server thread shares these settings
    key = add_oidc_provider(oidc)
    url = live.tenant_url("acme", "mcp")
    token = platform_token(live)
    path_mode = result_of(call(url, token, "connector_profile", {"provider": key}))["structuredContent"]
    assert path_mode["connect_url"] == f"{live.url}/t/acme/connections/{key}/connect/"

    host = f"acme-{unique}.test"
    domain = Domain.objects.create(domain=host, tenant=Tenant.objects.get(schema_name="acme"), is_primary=True)
    try:
        found = result_of(call(url, token, "connector_profile", {"provider": key}))["structuredContent"]
        port = live.url.rsplit(":", 1)[1]
        assert found["connect_url"] == f"http://{host}:{port}/connections/{key}/connect/"
        # the same page, reached on the tenant's domain: members only, so it sends the visitor to log in there
        page = httpx.get(f"{live.url}/connections/{key}/connect/", headers={"Host": f"{host}:{port}"})
        assert page.status_code == 302 and page.headers["location"].startswith("/login/?next=/connections/")
    finally:
        domain.delete()
