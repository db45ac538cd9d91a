"""Tokens for the live server's MCP endpoint and what its answers carry."""

from __future__ import annotations

from django_tenants.utils import schema_context

from crm.models import Contact
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, signed_in


def token_for(live, slug: str, email: str, scope: str = "crm.read", **reg) -> tuple[str, str]:
    """An access token of ``email`` in tenant ``slug`` through the whole OAuth flow, and its client id."""
    client, browser = signed_in(live.tenant(slug), email, **reg)
    return obtain_tokens(browser, client, scope=scope)["access_token"], client.client_id


def platform_token(live, scope: str = "connections") -> str:
    """acme's member's access token for acme's MCP endpoint."""
    return token_for(live, "acme", "member@acme.test", scope)[0]


def result_of(response) -> dict:
    """The JSON-RPC result of a tools/call answered without any challenge."""
    assert response.status_code == 200, response.text
    assert "www-authenticate" not in response.headers
    result = response.json()["result"]
    assert "mcp/www_authenticate" not in (result.get("_meta") or {})
    return result


def assert_tool_result_challenge(live, token: str) -> None:
    """A tools/call that lacks scope answers as an isError result carrying the challenge."""
    with schema_context("acme"):
        contact_id = Contact.objects.values_list("pk", flat=True).first()
    response = call(live.tenant_url("acme", "mcp"), token, "crm_create_note", {"contact_id": contact_id, "body": "x"})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["isError"] is True
    [challenge] = result["_meta"]["mcp/www_authenticate"]
    assert challenge.startswith("Bearer resource_metadata=") and 'error="insufficient_scope"' in challenge
