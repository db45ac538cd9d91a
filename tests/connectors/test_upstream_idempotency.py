"""Exactly-once upstream: ``connector_crm_create_note`` in tenant acme writes a note in tenant globex (the
platform as provider) through acme's connected account, with an idempotency key derived from acme's
key. A connector refresh in the middle of the write (globex refuses the expired access token) retries
the request once and the note is applied once, counted at the provider; a retry whose acme record was
lost is deduplicated by the provider itself."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.models import AccessToken

from crm.models import Contact, Note
from declarations.idempotency import IDEMPOTENT_REPLAY_META
from mcp_tools.models import IdempotencyRecord
from tests.idempotency_client import keyed_call
from tests.oauth_flow import obtain_tokens, signed_in
from tests.support.connectors import (
    account_and_credential,
    connect_to_globex,
    issued_refresh_tokens,
    register_platform_client,
)
from tests.support.net import answer_json

pytestmark = pytest.mark.timeout(120)


def writable_provider(live, unique: str) -> tuple[str, str, str]:
    from connectors.services import add_provider

    client_id, secret = register_platform_client(live)
    key = f"globexw-{unique}"
    with schema_context("acme"):
        add_provider(
            key=key,
            issuer=live.tenant_url("globex").rstrip("/"),
            client_id=client_id,
            client_secret=secret,
            scopes=["crm.read", "crm.write"],
            display_name="Globex (write)",
            mcp_endpoint=live.tenant_url("globex", "mcp"),
        )
    return key, client_id, secret


def globex_notes(body: str) -> list[int]:
    with schema_context("globex"):
        return list(Note.objects.filter(body=body).values_list("pk", flat=True))


def test_a_refresh_in_the_middle_of_an_upstream_write_applies_once_at_the_provider(live, unique):
    key, client_id, _ = writable_provider(live, unique)
    assert connect_to_globex(live, key).status_code == 302
    _, credential = account_and_credential(key)
    client, member = signed_in(live.tenant("acme"), "member@acme.test")
    token = obtain_tokens(member, client, scope="connections")["access_token"]
    with schema_context("globex"):
        contact_id = Contact.objects.order_by("pk").values_list("pk", flat=True).first()
    body = f"upstream-{uuid.uuid4().hex}"
    args = {"provider": key, "contact_id": contact_id, "body": body}
    url, idem = live.tenant_url("acme", "mcp"), uuid.uuid4().hex

    # the access token acme holds has expired at globex (acme still thinks it valid): the first upstream
    # request gets a 401 before any side effect, acme refreshes, and sends the same request again, once
    checksum = hashlib.sha256(credential.access_token.encode()).hexdigest()
    with schema_context("globex"):
        expired = AccessToken.objects.filter(token_checksum=checksum).update(
            expires=timezone.now() - timedelta(seconds=1)
        )
    assert expired == 1
    issued = issued_refresh_tokens(client_id)
    first = keyed_call(url, token, "connector_crm_create_note", args, idem).json()["result"]
    assert first["isError"] is False, first
    assert issued_refresh_tokens(client_id) == issued + 1  # the refresh happened mid-call
    note_id = first["structuredContent"]["note"]["id"]
    assert globex_notes(body) == [note_id]  # applied once, counted at the provider
    with schema_context("globex"):  # the provider recorded the derived key, not acme's key itself
        upstream = IdempotencyRecord.objects.get(tool_name="crm_create_note", result__structuredContent__id=note_id)
    assert upstream.key != idem and len(upstream.key) == 64

    # a retry at acme: answered from acme's record, the provider is not called
    again = keyed_call(url, token, "connector_crm_create_note", args, idem).json()["result"]
    assert again["structuredContent"] == first["structuredContent"] and again["_meta"][IDEMPOTENT_REPLAY_META]

    # acme's record lost (say its worker died after the provider committed): the retry calls the
    # provider again with the same derived key, and the provider answers its stored result
    with schema_context("acme"):
        assert IdempotencyRecord.objects.filter(key=idem).delete()[0] == 1
    replayed = keyed_call(url, token, "connector_crm_create_note", args, idem).json()["result"]
    assert replayed["isError"] is False and replayed["structuredContent"]["note"]["id"] == note_id
    assert globex_notes(body) == [note_id]
    with schema_context("globex"):
        assert IdempotencyRecord.objects.filter(key=upstream.key).count() == 1

    # without a key the tool still works, and each call is a new note (nothing to deduplicate by)
    fresh = keyed_call(url, token, "connector_crm_create_note", {**args, "body": body + "!"}, None).json()["result"]
    assert fresh["isError"] is False and len(globex_notes(body + "!")) == 1


@pytest.mark.django_db  # the provider's concurrency slots are PostgreSQL advisory locks
def test_the_upstream_request_carries_the_key_as_header_and_in_meta():
    """What a provider other than this platform sees: a loopback HTTP server records the request."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from connectors.models import Provider
    from connectors.tools import _call_upstream_tool
    from declarations.idempotency import IDEMPOTENCY_META_KEY

    seen: list[tuple[dict, dict]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            answer_json(self, 200, json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": {"content": []}}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/mcp"
        provider = Provider(key="recorder", token_endpoint=f"{endpoint}/token", client_id="c", mcp_endpoint=endpoint)
        key = uuid.uuid4().hex
        assert (
            _call_upstream_tool(provider, "tok", "crm_create_note", {"contact_id": 1, "body": "b"}, key).status == 200
        )
        assert _call_upstream_tool(provider, "tok", "crm_search_contacts", {"query": ""}).status == 200
    finally:
        server.shutdown()
        server.server_close()
    (keyed_headers, keyed_body), (plain_headers, plain_body) = seen
    assert keyed_headers["idempotency-key"] == key and keyed_body["params"]["_meta"][IDEMPOTENCY_META_KEY] == key
    assert "idempotency-key" not in plain_headers and IDEMPOTENCY_META_KEY not in plain_body["params"]["_meta"]
