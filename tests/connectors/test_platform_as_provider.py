"""The second, independent provider implementation: the platform's own authorization server
(tenant ``globex``, django-oauth-toolkit) as the upstream of tenant ``acme``'s connector. Connect,
use, refresh with rotation (counted at the provider), single flight, revocation -> needs_reauth ->
reconnect, and disconnect -> revoked at the provider (asked through its introspection endpoint)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from connectors import tokens
from connectors.errors import ReauthRequired
from connectors.models import ConnectedAccount
from connectors.services import add_provider
from oauth.models import ClientProfile
from tests.conftest import LiveServer
from tests.support.connectors import (
    account_and_credential,
    connect_to_globex,
    issued_refresh_tokens,
    register_platform_client,
)

pytestmark = pytest.mark.timeout(120)


def setup_provider(live: LiveServer, unique: str, *, api: bool = False) -> tuple[str, str, str]:
    """``api``: connect for globex's REST API (audience ``/t/globex/api``) instead of its MCP endpoint."""
    client_id, secret = register_platform_client(live)
    with schema_context("globex"):  # the test asks the provider about tokens through introspection
        marked = ClientProfile.objects.filter(application__client_id=client_id).update(is_resource_server=True)
    assert marked == 1
    key = f"globex-{unique}"
    with schema_context("acme"):
        provider, _ = add_provider(
            key=key,
            issuer=live.tenant_url("globex").rstrip("/"),
            client_id=client_id,
            client_secret=secret,
            scopes=["crm.read"],
            display_name="Globex",
            mcp_endpoint=None if api else live.tenant_url("globex", "mcp"),
            api_base_url=live.tenant_url("globex", "api") if api else None,
            extra_authorize_params={"resource": live.tenant_url("globex", "api")} if api else None,
        )
    assert provider.revocation_endpoint.endswith("/t/globex/revoke_token/") and provider.pkce
    return key, client_id, secret


def introspect(live: LiveServer, client_id: str, secret: str, token: str) -> bool:
    response = httpx.post(
        live.tenant_url("globex", "introspect/"), data={"token": token}, auth=(client_id, secret), timeout=20
    )
    assert response.status_code == 200, response.text
    return response.json()["active"]


def test_connect_refresh_single_flight_revocation_and_reconnect(live, unique):
    key, client_id, secret = setup_provider(live, unique)
    assert connect_to_globex(live, key).status_code == 302
    account, first = account_and_credential(key)
    assert account.status == "active" and account.granted_scopes == ["crm.read"]
    assert introspect(live, client_id, secret, first.access_token)
    issued = issued_refresh_tokens(client_id)

    # twenty concurrent callers over an expired token: one refresh at globex, rotation committed
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    barrier = threading.Barrier(20)

    def call(_: int) -> str:
        try:
            barrier.wait()
            with schema_context("acme"):
                return tokens.access_token(user_id=account.user_id, provider_key=key)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    _, second = account_and_credential(key)
    assert results == [second.access_token] * 20
    assert issued_refresh_tokens(client_id) == issued + 1  # exactly one refresh grant at the provider
    assert second.refresh_token != first.refresh_token
    assert introspect(live, client_id, secret, second.access_token)

    # upstream revocation (the user revokes at globex) -> needs_reauth -> reconnect works
    revoked = httpx.post(
        live.tenant_url("globex", "revoke_token/"),
        data={"token": second.refresh_token, "token_type_hint": "refresh_token"},
        auth=(client_id, secret),
        timeout=20,
    )
    assert revoked.status_code == 200
    with schema_context("acme"):
        ConnectedAccount.objects.filter(pk=account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(ReauthRequired) as error:
            tokens.access_token(user_id=account.user_id, provider_key=key)
    assert error.value.code == "invalid_grant"
    assert account_and_credential(key)[0].status == "needs_reauth"
    assert connect_to_globex(live, key).status_code == 302
    again, third = account_and_credential(key)
    assert (again.status, again.status_reason) == ("active", "")
    with schema_context("acme"):
        assert tokens.access_token(user_id=account.user_id, provider_key=key) == third.access_token

    # disconnect -> revoked at globex
    with schema_context("acme"):
        from connectors.services import disconnect

        disconnect(user_id=account.user_id, provider_key=key)
    assert not introspect(live, client_id, secret, third.access_token)


def connected_from_acme(live, key: str, tool: str) -> tuple[str, str]:
    """acme's MCP URL and a member's token for ``connections``: ``tool`` asks to connect, then the
    member connects to globex."""
    from tests.mcp_raw import call
    from tests.oauth_flow import obtain_tokens, signed_in

    url = live.tenant_url("acme", "mcp")
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    before = call(url, token, tool, {"provider": key}).json()["result"]
    assert before["isError"] is True and before["structuredContent"]["reason"] == "not_connected"
    assert connect_to_globex(live, key).status_code == 302
    return url, token


def test_a_tool_in_acme_searches_globex_contacts_through_the_connected_account(live, unique):
    from crm.models import Contact
    from tests.mcp_raw import call

    key, _, _ = setup_provider(live, unique)
    url, token = connected_from_acme(live, key, "connector_crm_search")
    result = call(url, token, "connector_crm_search", {"provider": key, "query": ""}).json()["result"]
    assert result["isError"] is False, result
    with schema_context("globex"):
        globex_names = sorted(Contact.objects.values_list("name", flat=True))
    with schema_context("acme"):
        acme_names = set(Contact.objects.values_list("name", flat=True))
    found = sorted(c["name"] for c in result["structuredContent"]["contacts"])
    assert found == globex_names and not set(found) & (acme_names - set(globex_names))


def test_a_tool_in_acme_reads_globex_contacts_through_globex_api_and_refreshes_once(live, unique):
    """The platform as a provider: globex's CRM read API (``/t/globex/api/crm/contacts``, ``crm.read``, audience
    ``/t/globex/api``) called by acme's ``connector_crm_contacts`` with the member's connected account;
    a token globex considers expired is refreshed once (counted at globex) and the call succeeds."""
    from oauth2_provider.models import AccessToken

    from crm.models import Contact
    from oauth.validators import checksum
    from tests.mcp_raw import call

    key, client_id, _ = setup_provider(live, unique, api=True)
    url, token = connected_from_acme(live, key, "connector_crm_contacts")
    account, credential = account_and_credential(key)
    with schema_context("globex"):
        upstream = AccessToken.objects.get(token_checksum=checksum(credential.access_token))
        assert upstream.resource == [live.tenant_url("globex", "api")]
        globex_names = sorted(Contact.objects.values_list("name", flat=True))

    result = call(url, token, "connector_crm_contacts", {"provider": key, "query": ""}).json()["result"]
    assert result["isError"] is False, result
    assert sorted(c["name"] for c in result["structuredContent"]["contacts"]) == globex_names
    one = globex_names[0]
    narrowed = call(url, token, "connector_crm_contacts", {"provider": key, "query": one}).json()["result"]
    assert one in [c["name"] for c in narrowed["structuredContent"]["contacts"]]
    assert len(narrowed["structuredContent"]["contacts"]) < len(globex_names)

    # globex expires the token while acme still believes it valid: 401 -> one refresh -> success
    with schema_context("globex"):
        AccessToken.objects.filter(pk=upstream.pk).update(expires=timezone.now() - timedelta(seconds=1))
    issued = issued_refresh_tokens(client_id)
    again = call(url, token, "connector_crm_contacts", {"provider": key, "query": ""}).json()["result"]
    assert again["isError"] is False, again
    assert sorted(c["name"] for c in again["structuredContent"]["contacts"]) == globex_names
    assert issued_refresh_tokens(client_id) == issued + 1
    refreshed, renewed = account_and_credential(key)
    assert refreshed.refresh_count == account.refresh_count + 1 and renewed.access_token != credential.access_token

    # the connected account's token is for globex's API: globex's MCP endpoint refuses it
    refused = call(live.tenant_url("globex", "mcp"), renewed.access_token, "crm_search_contacts")
    assert refused.status_code == 401
