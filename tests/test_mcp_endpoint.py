"""The MCP endpoint over real HTTP: execution-time checks, both challenge channels, cross-tenant
safety, malformed input. Done-when of the MCP issue."""

from __future__ import annotations

import io
import json

import anyio
import httpx
from django.core.management import call_command
from django_tenants.utils import schema_context

from bench.common import tool_policy_override
from crm.models import Contact, Note
from declarations.tools import all_tools
from mcp_tools.models import ToolPolicy
from oauth.models import ClientProfile
from tests.conftest import PASSWORD
from tests.mcp_client import connect, provider
from tests.mcp_raw import HANDSHAKE, MODERN, call, modern_request
from tests.oauth_flow import signed_in, signed_in_browser
from tests.support.mcp import token_for


def note_count(slug: str) -> int:
    with schema_context(slug):
        return Note.objects.count()


def contact_ids(slug: str) -> list[int]:
    with schema_context(slug):
        return list(Contact.objects.values_list("pk", flat=True))


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


# --- the full flow with the official client ---------------------------------------------------------


def test_step_up_with_the_sdk_client_keeps_earlier_scopes(live):
    url = live.tenant_url("acme", "mcp")
    browser = signed_in_browser(live.tenant("acme"), "member@acme.test")
    oauth, consent = provider(url, browser)
    contact_id = contact_ids("acme")[0]
    before = note_count("acme")

    async def scenario():
        async with connect(url, oauth) as client:
            listed = await client.list_tools()
            schemes = {tool.name: (tool.meta or {}).get("securitySchemes") for tool in listed.tools}
            assert schemes["crm_search_contacts"] == [{"type": "oauth2", "scopes": ["crm.read"]}]
            assert schemes["crm_create_note"] == [{"type": "oauth2", "scopes": ["crm.write"]}]
            read = await client.call_tool("crm_search_contacts", {"query": ""})
            assert not read.is_error
            written = await client.call_tool("crm_create_note", {"contact_id": contact_id, "body": "stepped up"})
            assert not written.is_error, written
            again = await client.call_tool("crm_get_contact", {"contact_id": contact_id})
            assert not again.is_error

    anyio.run(scenario)
    assert note_count("acme") == before + 1
    # two authorizations: the first for the base scopes, the step-up for base + crm.write
    assert len(consent.authorize_urls) == 2
    step_up = httpx.URL(consent.authorize_urls[1]).params["scope"].split()
    assert {"crm.read", "crm.write"} <= set(step_up)
    token = oauth.context.current_tokens
    assert {"crm.read", "crm.write"} <= set(token.scope.split())


def test_handshake_era_client_works(live):
    url = live.tenant_url("acme", "mcp")
    browser = signed_in_browser(live.tenant("acme"), "member@acme.test")
    oauth, _ = provider(url, browser)

    async def scenario():
        async with connect(url, oauth, mode="legacy") as client:
            assert client.protocol_version == HANDSHAKE
            result = await client.call_tool("crm_search_contacts", {"query": "Grace"})
            assert not result.is_error and result.structured_content["contacts"][0]["name"] == "Grace Hopper"

    anyio.run(scenario)


# --- anonymous access and tools/list ----------------------------------------------------------------


def test_anonymous_requests_need_an_enabled_noauth_tool(live):
    url = live.tenant_url("globex", "mcp")
    response = modern_request(url, "tools/list")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge == (
        f'Bearer resource_metadata="{live.url}/.well-known/oauth-protected-resource/t/globex/mcp", '
        'scope="crm.read tenant.read"'
    )
    assert error_of(response)["data"]["class"] == "AUTH_REQUIRED"

    with tool_policy_override("globex", "tenant_info", enabled=True, noauth=True, scopes=""):
        listed = modern_request(url, "tools/list")
        assert listed.status_code == 200
        tools = {t["name"]: t for t in listed.json()["result"]["tools"]}
        assert tools["tenant_info"]["securitySchemes"] == [{"type": "noauth"}]
        assert tools["tenant_info"]["_meta"]["securitySchemes"] == [{"type": "noauth"}]
        assert tools["crm_delete_contact"]["securitySchemes"] == [{"type": "oauth2", "scopes": ["crm.admin"]}]
        assert tools["crm_delete_contact"]["annotations"]["destructiveHint"] is True
        assert listed.json()["result"]["cacheScope"] == "private" and listed.json()["result"]["ttlMs"] > 0
        info = call(url, None, "tenant_info")
        assert info.json()["result"]["structuredContent"] == {"slug": "globex", "name": "Globex Corporation"}
        # a protected tool still needs a token
        refused = call(url, None, "crm_search_contacts")
        assert refused.status_code == 401 and 'scope="crm.read tenant.read"' in refused.headers["www-authenticate"]


# --- challenges ----------------------------------------------------------------------------------


def test_insufficient_scope_over_http_names_granted_plus_needed(live):
    url = live.tenant_url("acme", "mcp")
    token, _ = token_for(live, "acme", "member@acme.test")
    before = note_count("acme")
    response = call(url, token, "crm_create_note", {"contact_id": contact_ids("acme")[0], "body": "x"})
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{live.url}/.well-known/oauth-protected-resource/t/acme/mcp", '
        'error="insufficient_scope", error_description="This tool needs the scope(s): crm.write", '
        'scope="crm.read crm.write"'
    )
    data = error_of(response)["data"]
    assert data["class"] == "INSUFFICIENT_SCOPE" and data["retryable"] is True
    assert note_count("acme") == before


def test_tool_result_channel_challenge_is_literal(live):
    url = live.tenant_url("acme", "mcp")
    token, client_id = token_for(live, "acme", "member@acme.test", mcp_challenge_channel="tool_result")
    with schema_context("acme"):
        assert ClientProfile.objects.get(application__client_id=client_id).challenge_channel == "tool_result"
    before = note_count("acme")
    response = call(url, token, "crm_create_note", {"contact_id": contact_ids("acme")[0], "body": "x"})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["isError"] is True
    assert result["_meta"]["mcp/www_authenticate"] == [
        f'Bearer resource_metadata="{live.url}/.well-known/oauth-protected-resource/t/acme/mcp", '
        'error="insufficient_scope", error_description="This tool needs the scope(s): crm.write", '
        'scope="crm.read crm.write"'
    ]
    assert result["_meta"]["mcp/error"] == {
        "class": "INSUFFICIENT_SCOPE",
        "retryable": True,
        "description": "This tool needs the scope(s): crm.write",
    }
    assert note_count("acme") == before


def test_missing_expired_revoked_and_foreign_tokens_get_401_with_resource_metadata(live):
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from oauth.validators import checksum

    url = live.tenant_url("acme", "mcp")
    metadata = f'resource_metadata="{live.url}/.well-known/oauth-protected-resource/t/acme/mcp"'
    token, _client_id = token_for(live, "acme", "member@acme.test")
    assert call(url, token, "crm_search_contacts").status_code == 200

    for bad in ("not-a-token", ""):
        response = call(url, bad or None, "crm_search_contacts")
        assert response.status_code == 401 and metadata in response.headers["www-authenticate"]

    # minted in acme, presented at globex: the token does not exist in globex's schema
    response = call(live.tenant_url("globex", "mcp"), token, "crm_search_contacts")
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "/t/globex/mcp" in response.headers["www-authenticate"]

    with schema_context("acme"):
        AccessToken.objects.filter(token_checksum=checksum(token)).update(expires=timezone.now() - timedelta(seconds=1))
    expired = call(url, token, "crm_search_contacts")
    assert expired.status_code == 401 and "has expired" in expired.headers["www-authenticate"]
    assert metadata in expired.headers["www-authenticate"]

    token2, _ = token_for(live, "acme", "member@acme.test")
    with schema_context("acme"):
        AccessToken.objects.filter(token_checksum=checksum(token2)).update(resource=["https://other.example/mcp"])
    other = call(url, token2, "crm_search_contacts")
    assert other.status_code == 401 and "not issued for this resource" in other.headers["www-authenticate"]
    with schema_context("acme"):
        AccessToken.objects.filter(token_checksum=checksum(token2)).update(resource=[])
    empty = call(url, token2, "crm_search_contacts")
    assert empty.status_code == 401  # an empty audience is not "anything"


# --- mid-session changes -------------------------------------------------------------------------


def test_revoked_token_mid_session(live):
    url = live.tenant_url("acme", "mcp")
    token, client_id = token_for(live, "acme", "admin@acme.test", scope="crm.read crm.write")
    assert call(url, token, "crm_search_contacts").status_code == 200
    httpx.post(live.tenant_url("acme", "revoke_token/"), data={"token": token, "client_id": client_id})
    before = note_count("acme")
    response = call(url, token, "crm_create_note", {"contact_id": contact_ids("acme")[0], "body": "x"})
    assert response.status_code == 401 and error_of(response)["data"]["class"] == "INVALID_TOKEN"
    assert note_count("acme") == before


def test_membership_ended_mid_session(live, unique):
    from oauth import receivers

    email = f"leaver-{unique}@acme.test"
    call_command("tenant_add_user", "acme", email, "--password", PASSWORD, "--role", "member", stdout=io.StringIO())
    url = live.tenant_url("acme", "mcp")
    token, _ = token_for(live, "acme", email, scope="crm.read crm.write")
    token_b, _ = token_for(live, "acme", email, scope="crm.read crm.write")
    contact = contact_ids("acme")[0]
    assert call(url, token, "crm_create_note", {"contact_id": contact, "body": "before"}).status_code == 200
    before = note_count("acme")

    from tenants.signals import membership_ended

    membership_ended.disconnect(receivers.revoke_tokens_of_ended_membership)
    try:
        # first with the hook off, so the membership check itself is what refuses
        call_command("tenant_remove_user", "acme", email, stdout=io.StringIO())
        response = call(url, token_b, "crm_create_note", {"contact_id": contact, "body": "after"})
        assert response.status_code == 403 and error_of(response)["data"]["class"] == "TENANT_MISMATCH"
        assert error_of(response)["data"]["retryable"] is False
    finally:
        membership_ended.connect(receivers.revoke_tokens_of_ended_membership)
    # then with the hook on: re-added and removed again, the revocation hook deletes the token itself
    call_command("tenant_add_user", "acme", email, stdout=io.StringIO())
    call_command("tenant_remove_user", "acme", email, stdout=io.StringIO())
    response = call(url, token, "crm_create_note", {"contact_id": contact, "body": "after"})
    assert response.status_code == 401 and error_of(response)["data"]["class"] == "INVALID_TOKEN"
    assert note_count("acme") == before


def test_matrix_tightened_mid_session(live):
    url = live.tenant_url("acme", "mcp")
    token, _ = token_for(live, "acme", "member@acme.test")
    assert call(url, token, "crm_search_contacts").status_code == 200
    with tool_policy_override("acme", "crm_search_contacts", scopes="crm.read crm.admin", enabled=True):
        response = call(url, token, "crm_search_contacts")
        assert response.status_code == 403 and error_of(response)["data"]["class"] == "INSUFFICIENT_SCOPE"
        assert 'scope="crm.admin crm.read"' in response.headers["www-authenticate"]
        with schema_context("acme"):
            ToolPolicy.objects.filter(tool_name="crm_search_contacts").update(enabled=False)
        disabled = call(url, token, "crm_search_contacts")
        assert disabled.status_code == 400 and error_of(disabled)["code"] == -32602
    assert call(url, token, "crm_search_contacts").status_code == 200


def test_tenant_deactivated_mid_session(live, unique):
    from tenants.services import add_user, create_tenant

    slug = f"t{unique}"
    create_tenant(slug=slug, name="Short-lived")
    add_user(slug=slug, email=f"admin@{slug}.test", password=PASSWORD, role="admin")
    with schema_context(slug):  # the new tenant's scope matrix holds every tool's code defaults
        assert set(ToolPolicy.objects.values_list("tool_name", flat=True)) == set(all_tools())
    url = live.tenant_url(slug, "mcp")
    token, _ = token_for(live, slug, f"admin@{slug}.test", scope="crm.read crm.write")
    with schema_context(slug):
        contact = Contact.objects.create(name="Someone")
    assert call(url, token, "crm_create_note", {"contact_id": contact.pk, "body": "ok"}).status_code == 200
    call_command("tenant_deactivate", slug, stdout=io.StringIO())
    response = call(url, token, "crm_create_note", {"contact_id": contact.pk, "body": "refused"})
    assert response.status_code == 403
    assert response.json()["class"] == "TENANT_INACTIVE" and response.json()["retryable"] is False
    with schema_context(slug):
        assert list(Note.objects.values_list("body", flat=True)) == ["ok"]


def test_demoted_admin_loses_admin_only_scope(live, unique):
    email = f"demoted-{unique}@acme.test"
    call_command("tenant_add_user", "acme", email, "--password", PASSWORD, "--role", "admin", stdout=io.StringIO())
    token, _ = token_for(live, "acme", email, scope="crm.read crm.admin")
    url = live.tenant_url("acme", "mcp")
    with schema_context("acme"):
        victim = Contact.objects.create(name="Keep me")
    call_command("tenant_add_user", "acme", email, "--role", "member", stdout=io.StringIO())
    response = call(url, token, "crm_delete_contact", {"contact_id": victim.pk})
    assert response.status_code == 403 and error_of(response)["data"]["class"] == "INSUFFICIENT_SCOPE"
    with schema_context("acme"):
        assert Contact.objects.filter(pk=victim.pk).exists()
    # and a plain member cannot be granted it at all
    client, browser = signed_in(live.tenant("acme"), "member@acme.test")
    from tests.oauth_flow import authorize_url, pkce_pair, redirect_params

    _, challenge = pkce_pair()
    refused = redirect_params(browser.authorize(authorize_url(client, scope="crm.read crm.admin", challenge=challenge)))
    assert refused["error"] == "access_denied"


# --- cross-tenant matrix ----------------------------------------------------------------------------


def test_cross_tenant_matrix_reads_and_writes_nothing_across(live):
    tokens = {
        slug: token_for(live, slug, f"admin@{slug}.test", scope="crm.read crm.write crm.admin")[0]
        for slug in ("acme", "globex")
    }
    with schema_context("acme"):
        acme_victim = Contact.objects.create(name="Acme Victim", email="victim@acme.example")
    with schema_context("globex"):
        globex_victim = Contact.objects.create(name="Globex Victim", email="victim@globex.example")
    own = {"acme": acme_victim.pk, "globex": globex_victim.pk}

    def snapshot(slug):
        with schema_context(slug):
            return (
                sorted(Contact.objects.values_list("pk", "name", "email")),
                sorted(Note.objects.values_list("pk", "body")),
            )

    before = {slug: snapshot(slug) for slug in own}
    foreign_ids = {"acme": [own["globex"], *contact_ids("globex")], "globex": [own["acme"], *contact_ids("acme")]}
    for endpoint in ("acme", "globex"):
        url = live.tenant_url(endpoint, "mcp")
        other = "globex" if endpoint == "acme" else "acme"
        # the other tenant's token: refused outright
        for name, args in (
            ("crm_search_contacts", {}),
            ("crm_create_note", {"contact_id": own[endpoint], "body": "x"}),
            ("crm_delete_contact", {"contact_id": own[endpoint]}),
        ):
            response = call(url, tokens[other], name, args)
            assert response.status_code == 401, (endpoint, name)
        # this tenant's token with the other tenant's object ids: nothing found, nothing touched
        for cid in set(foreign_ids[endpoint]) - set(contact_ids(endpoint)):
            for name, args in (
                ("crm_get_contact", {"contact_id": cid}),
                ("crm_create_note", {"contact_id": cid, "body": "cross"}),
                ("crm_update_contact", {"contact_id": cid, "name": "Hijacked"}),
                ("crm_delete_contact", {"contact_id": cid}),
            ):
                response = call(url, tokens[endpoint], name, args)
                assert response.status_code == 200, (endpoint, name)
                result = response.json()["result"]
                assert result["isError"] is True and "no contact" in result["content"][0]["text"]
        # searches with the other tenant's names find nothing of theirs
        found = call(url, tokens[endpoint], "crm_search_contacts", {"query": f"{other.title()} Victim"})
        assert found.json()["result"]["structuredContent"]["contacts"] == []
    assert {slug: snapshot(slug) for slug in own} == before


# --- malformed input ----------------------------------------------------------------------------------


def test_malformed_requests_are_classified_never_500(live):
    url = live.tenant_url("acme", "mcp")
    token, _ = token_for(live, "acme", "admin@acme.test", scope="crm.read crm.write")
    auth = {"Authorization": f"Bearer {token}"}
    before = note_count("acme")
    json_headers = {"Content-Type": "application/json", **auth}

    def post(body: bytes | str, headers=json_headers):
        return httpx.post(url, content=body, headers=headers, timeout=20)

    cases = [
        (post(b"{not json"), 400, -32700),
        (post(b"[]"), 400, -32600),
        (post(b'"just a string"'), 400, -32600),
        (post(json.dumps({"id": 1, "method": "ping"})), 400, -32600),
        (post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such", "params": {}})), 404, -32601),
        (post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}})), 400, -32602),
        (post(b"x" * (1024 * 1024 + 1)), 413, -32600),
        (post(b"{}", {"Content-Type": "text/plain", **auth}), 415, -32600),
        (
            post(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
                {**json_headers, "Origin": "https://evil.example"},
            ),
            403,
            -32600,
        ),
        (httpx.get(url, headers=auth), 405, -32600),
        (httpx.delete(url, headers=auth), 405, -32600),
        (call(url, token, "no_such_tool"), 400, -32602),
        (call(url, token, "crm_create_note", {"contact_id": "one", "body": "x"}), 400, -32602),
        (call(url, token, "crm_create_note", {"contact_id": 1, "body": "x", "extra": 1}), 400, -32602),
        (call(url, token, "crm_search_contacts", headers={"Mcp-Name": "crm_delete_contact"}), 400, -32020),
        (call(url, token, "crm_search_contacts", headers={"Mcp-Method": "tools/list"}), 400, -32020),
        (modern_request(url, "tools/list", token=token, version="2099-01-01"), 400, -32022),
        (
            modern_request(
                url,
                "initialize",
                {"protocolVersion": MODERN, "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
                token=token,
            ),
            404,
            -32601,
        ),
    ]
    for index, (response, status, code) in enumerate(cases):
        assert response.status_code == status, (index, response.status_code, response.text[:200])
        assert response.json()["error"]["code"] == code, (index, response.text[:200])
    unsupported = modern_request(url, "tools/list", token=token, version="2099-01-01").json()["error"]["data"]
    # what server/discover lists (-32022 is the 2026-07-28 error; the handshake era negotiates at
    # initialize), and the version asked for
    assert unsupported == {"supported": [MODERN], "requested": "2099-01-01"}
    # a notification is accepted with 202 and no body
    notification = post(
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        {**json_headers, "MCP-Protocol-Version": HANDSHAKE},
    )
    assert notification.status_code == 202 and notification.content == b""
    assert note_count("acme") == before


def test_results_carry_result_type_and_discover_works(live):
    url = live.tenant_url("acme", "mcp")
    with tool_policy_override("acme", "tenant_info", enabled=True, noauth=True, scopes=""):
        discover = modern_request(url, "server/discover")
        assert discover.status_code == 200, discover.text
        result = discover.json()["result"]
        assert result["supportedVersions"] == [MODERN] and result["resultType"] == "complete"
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "Acme Corp MCP"
        assert "mcp-session-id" not in discover.headers
        info = call(url, None, "tenant_info").json()["result"]
        assert info["resultType"] == "complete" and info["isError"] is False
