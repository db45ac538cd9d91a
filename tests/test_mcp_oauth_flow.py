"""Done-when of the authorization-server and MCP issues, driven by the official mcp client."""

from __future__ import annotations

import anyio
from django_tenants.utils import schema_context

from tests.mcp_client import connect, provider
from tests.mcp_raw import MODERN
from tests.oauth_flow import signed_in_browser


def run(coro_fn, *args):
    return anyio.run(coro_fn, *args)


def test_sdk_client_discovers_registers_authorizes_and_calls(live):
    url = live.tenant_url("acme", "mcp")
    browser = signed_in_browser(live.tenant("acme"), "member@acme.test")
    oauth, consent = provider(url, browser)

    async def scenario():
        async with connect(url, oauth) as client:
            tools = await client.list_tools()
            names = {tool.name for tool in tools.tools}
            assert "crm_search_contacts" in names
            result = await client.call_tool("crm_search_contacts", {"query": "Ada"})
            assert not result.is_error, result
            assert result.structured_content["contacts"][0]["email"] == "ada@acme.example"
            return client.protocol_version

    version = run(scenario)
    assert version == MODERN
    assert len(consent.authorize_urls) == 1
    assert "resource=" in consent.authorize_urls[0] and "code_challenge_method=S256" in consent.authorize_urls[0]


def test_sdk_client_with_a_client_id_metadata_document(live, settings, document_server, unique):
    import json

    from oauth2_provider.models import Application

    from tests.oauth_flow import REDIRECT_URI

    # the client's metadata document on loopback (the test-only CIMD allowance maps the https
    # client_id host to it)
    document_server.cache_control = "max-age=600"
    origin, documents = document_server.url, document_server.documents
    client_id = f"https://client-{unique}.example.test/oauth/client.json"
    documents["/oauth/client.json"] = json.dumps(
        {
            "client_id": client_id,
            "client_name": "CIMD test client",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    ).encode()
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {f"client-{unique}.example.test": origin}

    url = live.tenant_url("acme", "mcp")
    browser = signed_in_browser(live.tenant("acme"), "member@acme.test")
    oauth, consent = provider(url, browser, client_metadata_url=client_id)

    async def scenario():
        async with connect(url, oauth) as client:
            result = await client.call_tool("crm_search_contacts", {"query": "Alan"})
            assert not result.is_error and result.structured_content["contacts"][0]["name"] == "Alan Turing"

    run(scenario)
    assert f"client_id={client_id.replace(':', '%3A').replace('/', '%2F')}" in consent.authorize_urls[0]
    with schema_context("acme"):
        app = Application.objects.get(client_id=client_id)
        assert app.registration_source == "cimd" and app.name == "CIMD test client"


def test_token_refresh_through_the_sdk_client(live):
    """The client refreshes an expired access token with its rotated refresh token, transparently."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from oauth.validators import checksum
    from tests.mcp_client import MemoryStorage

    url = live.tenant_url("acme", "mcp")
    browser = signed_in_browser(live.tenant("acme"), "member@acme.test")
    storage = MemoryStorage()
    oauth, consent = provider(url, browser, storage=storage)

    async def first():
        async with connect(url, oauth) as client:
            assert not (await client.call_tool("crm_search_contacts", {})).is_error

    run(first)
    old = storage.tokens
    with schema_context("acme"):
        AccessToken.objects.filter(token_checksum=checksum(old.access_token)).update(
            expires=timezone.now() - timedelta(seconds=5)
        )
    oauth.context.token_expiry_time = 1.0  # the client learns the token expired (as it would from the clock)

    async def second():
        async with connect(url, oauth) as client:
            assert not (await client.call_tool("crm_search_contacts", {})).is_error

    run(second)
    assert storage.tokens.access_token != old.access_token
    assert storage.tokens.refresh_token != old.refresh_token
    assert len(consent.authorize_urls) == 1  # refreshed, not re-authorized
