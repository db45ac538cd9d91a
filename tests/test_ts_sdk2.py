"""The real TS SDK v2 client (npm ``@modelcontextprotocol/client@2.4.0``, installed by ``make test`` from
tests/node/ts_sdk2/package-lock.json) against the live server, beside 1.x (tests/test_ts_sdk1.py):
the whole flow over 2026-07-28 with nothing but an in-memory store on the client side.

- registration: DCR with the ``application_type`` the SDK derives (native, from the loopback redirect);
  or CIMD through the test allowance, public or ``private_key_jwt`` (the SDK's own
  ``createPrivateKeyJwtAuth`` signs the assertions: a second, independent implementation of RFC 7523
  against the platform's);
- a read tool, then a write tool that needs ``crm.write``: the SDK answers the 403 by itself with a new
  authorization for the union of the scopes (no refresh first);
- the access token expires (the test ages it in the database): the SDK refreshes on the 401 and the
  refresh token rotates (the old one revoked, the new one live).

Login and consent go through the platform's pages over HTTP (tests.oauth_flow.Browser): the Node script
prints the authorization URL and reads the redirect's query back on stdin.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.oauth_flow import query_params, signed_in_browser
from tests.support.node_client import run_client

HARNESS = Path(__file__).parent / "node" / "ts_sdk2"
REDIRECT = "http://127.0.0.1:9/callback"


def _first_contact_id() -> int:
    from crm.models import Contact

    with schema_context("acme"):
        return Contact.objects.order_by("pk").values_list("pk", flat=True).first()


def _note_count(contact_id: int) -> int:
    from crm.models import Note

    with schema_context("acme"):
        return Note.objects.filter(contact_id=contact_id, body="written by TS SDK 2.x").count()


def _expire_access_tokens(client_id: str) -> None:
    from oauth2_provider.models import AccessToken

    with schema_context("acme"):
        AccessToken.objects.filter(application__client_id=client_id).update(
            expires=timezone.now() - timedelta(seconds=5)
        )


def _refresh_token(digest: str):
    """The refresh token whose SHA-256 (the stored checksum) starts with ``digest``."""
    from oauth2_provider.models import RefreshToken

    with schema_context("acme"):
        return RefreshToken.objects.get(token_checksum__startswith=digest)


def _drive(live, *args: str) -> list[dict]:
    acme = live.tenant("acme")
    browser = signed_in_browser(acme, "member@acme.test")
    client_id = None

    def answer(event: dict) -> dict | None:
        nonlocal client_id
        if event["event"] == "client":
            client_id = event["client_id"]
        elif event["event"] == "authorize":
            redirect = browser.authorize(event["url"])
            assert redirect.status_code == 302, (redirect.status_code, redirect.text[:500])
            return {"query": urlsplit(redirect.headers["location"]).query}
        elif event["event"] == "paused":
            _expire_access_tokens(client_id)
            return {"continue": True}
        return None

    return run_client(HARNESS, "@modelcontextprotocol/client", [acme.mcp, str(_first_contact_id()), *args], answer)


def _assert_flow(events: list[dict], notes_before: int, contact: int) -> str:
    """The flow's common facts; returns the client id."""
    by_name = {e["event"]: e for e in events}
    assert by_name["connected"]["protocolVersion"] == "2026-07-28"
    assert by_name["read"]["isError"] is False
    assert by_name["read"]["structured"]["contacts"][0]["name"] == "Grace Hopper"

    # step-up by the SDK itself: a second authorization for the union, no refresh attempted first
    authorizations = [set(query_params(e["url"])["scope"].split()) for e in events if e["event"] == "authorize"]
    assert len(authorizations) == 2, authorizations
    assert {"crm.read", "crm.write"} <= authorizations[1]
    assert not [e for e in events if e["event"] == "invalidate"]
    assert by_name["write"]["isError"] is False
    assert _note_count(contact) == notes_before + 1

    # refresh on the 401 of the expired token, with rotation
    steps = [e["event"] for e in events]
    after_pause = [e for e in events[steps.index("paused") :] if e["event"] == "tokens"]
    assert len(after_pause) == 1, events
    before = [e for e in events[: steps.index("paused")] if e["event"] == "tokens"][-1]
    assert before["refresh"] != after_pause[0]["refresh"]
    assert _refresh_token(before["refresh"]).revoked is not None
    assert _refresh_token(after_pause[0]["refresh"]).revoked is None
    assert by_name["read_after_refresh"]["isError"] is False
    assert {"crm.read", "crm.write"} <= set(by_name["done"]["scope"].split())
    return by_name["client"]["client_id"]


def test_ts_sdk2_dcr_step_up_refresh_rotation(live):
    from oauth.models import ClientProfile

    contact = _first_contact_id()
    notes_before = _note_count(contact)
    events = _drive(live, "dcr")
    client_id = _assert_flow(events, notes_before, contact)
    # the SDK sent application_type (derived from its loopback redirect); the registration answer has it
    assert [e["application_type"] for e in events if e["event"] == "client"] == ["native"]
    with schema_context("acme"):
        profile = ClientProfile.objects.select_related("application").get(application__client_id=client_id)
    assert profile.application.registration_source == "dcr" and profile.application_type == "native"


@pytest.mark.parametrize("private_key_jwt", [False, True], ids=["public", "private_key_jwt"])
def test_ts_sdk2_cimd(live, settings, document_server, unique, tmp_path, private_key_jwt):
    import jwt

    from oauth.models import AssertedTokenFamily, ClientAssertionJti, ClientProfile

    host = f"ts2-{unique}.example.test"
    client_id = f"https://{host}/oauth/client.json"
    document = {
        "client_id": client_id,
        "client_name": "TS SDK 2.x CIMD client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    args = ["cimd", client_id]
    if private_key_jwt:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = tmp_path / "client-key.pem"
        pkcs8 = serialization.PrivateFormat.PKCS8
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
        public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        document.update(token_endpoint_auth_method="private_key_jwt", jwks={"keys": [{**public, "kid": "ts2"}]})
        args += [str(pem), "ES256"]
    document_server.cache_control = "max-age=600"
    document_server.documents["/oauth/client.json"] = json.dumps(document).encode()
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {host: document_server.url}

    contact = _first_contact_id()
    notes_before = _note_count(contact)
    events = _drive(live, *args)
    assert _assert_flow(events, notes_before, contact) == client_id
    with schema_context("acme"):
        profile = ClientProfile.objects.select_related("application").get(application__client_id=client_id)
        asserted = AssertedTokenFamily.objects.filter(application=profile.application).count()
        jtis = ClientAssertionJti.objects.filter(application=profile.application).count()
    assert profile.application.registration_source == "cimd" and profile.application_type == "native"
    if private_key_jwt:
        assert profile.token_endpoint_auth_method == "private_key_jwt"
        assert asserted == 2 and jtis == 3  # two code exchanges and a refresh, each with its assertion
    else:
        assert profile.token_endpoint_auth_method == "" and asserted == jtis == 0
