"""Real clients' Client ID Metadata Documents against the live server, served on loopback through the
test allowance (``OAUTH_CIMD_TEST_LOOPBACK_ORIGINS``, which maps ``jwks_uri`` hosts too):

- ChatGPT's published document (``private_key_jwt``, ``jwks_uri``, RS256), in both shapes it comes in:
  with ``token_endpoint_auth_methods_supported: ["none", "private_key_jwt"]`` and without it (per-app
  client ids). The platform advertises ``private_key_jwt``, so the client authenticates with an RFC
  7523 assertion at the token and revocation endpoints, on every request;
- Claude's public document (``none``; it also lists the JWT bearer grant, which the platform records
  on the profile; a public client cannot present ID-JAGs: tests/identity/test_id_jag.py);
- a ``private_key_jwt`` document with an inline key the test holds, and every assertion the platform
  must refuse: none at all, another key, ``alg: none``, HS256 made with the public key, wrong or
  multi-valued ``aud``, expired, too long-lived, a replayed ``jti``.

The key pairs are made here (``cryptography``), the assertions signed with PyJWT, except the forged
ones (``alg: none``, HS256 over the public key), which are assembled by hand as an attacker would.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import jwt
import pytest
from django.core.cache import cache
from django.utils import timezone
from django_tenants.utils import schema_context
from oauth2_provider.cimd import _backoff_cache_key
from oauth2_provider.models import Application

from oauth.models import AssertedTokenFamily, ClientProfile
from observability.models import AuthEvent
from tests.conftest import DocumentServer
from tests.oauth_flow import Client, Tenant, authorization_code, signed_in_browser
from tests.support.cimd import Signer, forged

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CHATGPT_REDIRECT = "https://chatgpt.com/connector_platform_oauth_redirect"
CLAUDE_REDIRECT = "https://claude.ai/api/mcp/auth_callback"

# ChatGPT's published document, as served at https://chatgpt.com/oauth/client.json
CHATGPT_DOCUMENT = {
    "client_id": "https://chatgpt.com/oauth/client.json",
    "client_uri": "https://chatgpt.com/",
    "redirect_uris": [CHATGPT_REDIRECT],
    "token_endpoint_auth_method": "private_key_jwt",
    "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "client_name": "ChatGPT",
    "token_endpoint_auth_signing_alg": "RS256",
    "jwks_uri": "https://chatgpt.com/oauth/jwks.json",
}

# Claude's published document, as served at https://claude.ai/oauth/mcp-oauth-client-metadata
CLAUDE_DOCUMENT = {
    "client_id": "https://claude.ai/oauth/mcp-oauth-client-metadata",
    "client_name": "Claude",
    "client_uri": "https://claude.ai",
    "redirect_uris": [CLAUDE_REDIRECT],
    "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def issuer_of(tenant: Tenant) -> str:
    return tenant.base


def token_request(tenant: Tenant, **data) -> httpx.Response:
    return httpx.post(tenant.url("token/"), data=data, timeout=20)


def with_assertion(signer: Signer, client_id: str, tenant: Tenant, **overrides) -> dict:
    aud = overrides.pop("aud", issuer_of(tenant))
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signer.assertion(client_id, aud, **overrides)}


def code_exchange(client: Client, code: str, verifier: str, **auth) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    return token_request(client.tenant, **data, code_verifier=verifier, **auth)


def assert_invalid_client(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == "invalid_client", body
    for word in words:
        assert word in body["error_description"], body


def refused_outcomes(client_id: str) -> list[str]:
    with schema_context("acme"):
        return list(
            AuthEvent.objects.filter(event="client_assertion", client_id=client_id)
            .order_by("pk")
            .values_list("outcome", flat=True)
        )


def profile_of(client_id: str) -> ClientProfile:
    with schema_context("acme"):
        return ClientProfile.objects.select_related("application").get(application__client_id=client_id)


def forget_client(client_id: str) -> None:
    """The published client ids are the same in every test: start from first sight."""
    with schema_context("acme"):
        Application.objects.filter(client_id=client_id).delete()
    cache.delete(_backoff_cache_key(client_id))


@pytest.fixture
def documents(settings, document_server: DocumentServer) -> DocumentServer:
    """chatgpt.com, claude.ai and the test's own hosts, all served by one loopback document server."""
    document_server.cache_control = "max-age=600"
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {
        "chatgpt.com": document_server.url,
        "claude.ai": document_server.url,
        "client.example.test": document_server.url,
    }
    return document_server


def serve(server: DocumentServer, path: str, body: dict) -> None:
    server.documents[path] = json.dumps(body).encode()


# --- ChatGPT -----------------------------------------------------------------------------------


def test_chatgpt_published_document_authenticates_with_private_key_jwt(live, acme, documents):
    client_id = CHATGPT_DOCUMENT["client_id"]
    forget_client(client_id)
    audited = len(refused_outcomes(client_id))
    signer = Signer("chatgpt-2026-1")
    serve(documents, "/oauth/client.json", CHATGPT_DOCUMENT)
    serve(documents, "/oauth/jwks.json", signer.jwks())
    client = Client(acme, client_id, None, CHATGPT_REDIRECT)
    browser = signed_in_browser(acme, "member@acme.test")

    code, verifier = authorization_code(browser, client, scope="crm.read")
    profile = profile_of(client_id)
    assert profile.token_endpoint_auth_method == "private_key_jwt"
    assert profile.jwks_uri == CHATGPT_DOCUMENT["jwks_uri"] and profile.signing_alg == "RS256"
    # the challenge-channel rule table applies to CIMD clients on chatgpt.com as before
    assert profile.challenge_channel == "tool_result" and profile.application_type == "web"

    # while the platform advertises private_key_jwt, the document's "none" is no way around it
    assert_invalid_client(code_exchange(client, code, verifier, client_id=client_id), "private_key_jwt")
    # the assertion alone identifies the client: no client_id parameter
    exchanged = code_exchange(client, code, verifier, **with_assertion(signer, client_id, acme))
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert documents.hits.count("/oauth/jwks.json") == 1

    from tests.support.mcp import assert_tool_result_challenge

    assert_tool_result_challenge(live, tokens["access_token"])

    # refresh: without an assertion refused; with one (aud = the token endpoint URL, RFC 7523's
    # older advice, accepted for compatibility) rotated
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert_invalid_client(token_request(acme, **refresh, client_id=client_id), "private_key_jwt")
    refreshed = token_request(acme, **refresh, **with_assertion(signer, client_id, acme, aud=acme.url("token/")))
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    assert documents.hits.count("/oauth/jwks.json") == 1  # the set is kept for its answer's lifetime

    # revocation: the same rule
    revoke = {"token": refreshed.json()["refresh_token"], "token_type_hint": "refresh_token"}
    refused = httpx.post(acme.url("revoke_token/"), data={**revoke, "client_id": client_id}, timeout=20)
    assert_invalid_client(refused, "private_key_jwt")
    revoked = httpx.post(acme.url("revoke_token/"), data={**revoke, **with_assertion(signer, client_id, acme)})
    assert revoked.status_code == 200, revoked.text
    again = token_request(
        acme, grant_type="refresh_token", refresh_token=revoke["token"], **with_assertion(signer, client_id, acme)
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert refused_outcomes(client_id)[audited:] == ["missing_assertion"] * 3


def test_chatgpt_per_app_document_without_methods_supported_and_key_rotation(live, acme, documents, unique):
    """The per-app shape (``https://chatgpt.com/oauth/<id>/client.json``) has no
    ``token_endpoint_auth_methods_supported``. Its keys rotate: an unknown kid fetches ``jwks_uri``
    again, at most once per ``OAUTH_JWKS_REFETCH_SECONDS``."""
    client_id = f"https://chatgpt.com/oauth/{unique}/client.json"
    jwks_path = f"/oauth/{unique}/jwks.json"
    document = {k: v for k, v in CHATGPT_DOCUMENT.items() if k != "token_endpoint_auth_methods_supported"}
    document.update(client_id=client_id, jwks_uri=f"https://chatgpt.com{jwks_path}")
    old, new = Signer("old"), Signer("new")
    serve(documents, f"/oauth/{unique}/client.json", document)
    serve(documents, jwks_path, old.jwks())
    client = Client(acme, client_id, None, CHATGPT_REDIRECT)

    code, verifier = authorization_code(signed_in_browser(acme, "member@acme.test"), client)
    exchanged = code_exchange(client, code, verifier, client_id=client_id, **with_assertion(old, client_id, acme))
    assert exchanged.status_code == 200, exchanged.text

    serve(documents, jwks_path, new.jwks())  # the client rotated its key
    with schema_context("acme"):  # past the re-fetch interval since the first fetch
        ClientProfile.objects.filter(application__client_id=client_id).update(
            jwks_fetched_at=timezone.now() - timedelta(minutes=5)
        )
    refresh = {"grant_type": "refresh_token", "refresh_token": exchanged.json()["refresh_token"]}
    refreshed = token_request(acme, **refresh, **with_assertion(new, client_id, acme))
    assert refreshed.status_code == 200, refreshed.text
    assert documents.hits.count(jwks_path) == 2

    # a kid nobody published: refused, and no third fetch this soon (a forged kid cannot make the
    # platform fetch the client's jwks_uri on every request)
    stranger = Signer("forged")
    refresh = {"grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]}
    assert_invalid_client(token_request(acme, **refresh, **with_assertion(stranger, client_id, acme)), "kid")
    assert documents.hits.count(jwks_path) == 2
    assert "unknown_key" in refused_outcomes(client_id)


# --- Claude --------------------------------------------------------------------------------------


def test_claude_public_document(live, acme, documents):
    client_id = CLAUDE_DOCUMENT["client_id"]
    forget_client(client_id)
    serve(documents, "/oauth/mcp-oauth-client-metadata", CLAUDE_DOCUMENT)
    client = Client(acme, client_id, None, CLAUDE_REDIRECT)

    code, verifier = authorization_code(signed_in_browser(acme, "member@acme.test"), client)
    exchanged = code_exchange(client, code, verifier, client_id=client_id)
    assert exchanged.status_code == 200, exchanged.text
    refreshed = token_request(
        acme, grant_type="refresh_token", refresh_token=exchanged.json()["refresh_token"], client_id=client_id
    )
    assert refreshed.status_code == 200, refreshed.text
    profile = profile_of(client_id)
    assert profile.token_endpoint_auth_method == "" and profile.challenge_channel == "http"
    assert profile.application.authorization_grant_type == "authorization-code"


# --- a private_key_jwt client with an inline key: every refusal -------------------------------


def test_private_key_jwt_refusals(live, acme, documents, unique):
    client_id = f"https://client.example.test/{unique}/client.json"
    signer, other = Signer("k1"), Signer("k1")  # the other key claims the same kid
    serve(
        documents,
        f"/{unique}/client.json",
        {
            "client_id": client_id,
            "client_name": "pkjwt test client",
            "redirect_uris": [CHATGPT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": signer.jwks(),
        },
    )
    client = Client(acme, client_id, None, CHATGPT_REDIRECT)
    code, verifier = authorization_code(signed_in_browser(acme, "member@acme.test"), client)
    issuer = issuer_of(acme)

    def exchange_with(assertion: str | None, **extra) -> httpx.Response:
        auth = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion} if assertion else {}
        return code_exchange(client, code, verifier, client_id=client_id, **auth, **extra)

    public_pem = signer.public_pem
    refusals = [
        (None, "missing_assertion"),
        (other.assertion(client_id, issuer), "bad_signature"),
        (forged({"alg": "none", "typ": "JWT"}, signer.claims(client_id, issuer), None), "alg_not_allowed"),
        (forged({"alg": "HS256", "kid": "k1"}, signer.claims(client_id, issuer), public_pem), "alg_not_allowed"),
        (signer.assertion(client_id, "https://other.example/t/acme"), "wrong_audience"),
        (signer.assertion(client_id, [issuer, "https://other.example"]), "wrong_audience"),
        (signer.assertion(client_id, issuer, exp=int(time.time()) - 120), "expired"),
        (signer.assertion(client_id, issuer, exp=int(time.time()) + 3600), "too_long_lived"),
        (signer.assertion(client_id, issuer, sub="https://client.example.test/other.json"), "wrong_issuer"),
    ]
    for assertion, _reason in refusals:
        response = exchange_with(assertion)
        assert_invalid_client(response)
        assert "BEGIN PUBLIC KEY" not in response.text and signer.jwk["n"] not in response.text
    assert refused_outcomes(client_id) == [reason for _, reason in refusals]
    # size bounded before anything is parsed (which client it claims to be is not read either)
    assert_invalid_client(exchange_with(signer.assertion(client_id, issuer, padding="x" * 9000)), "larger than")

    good = signer.assertion(client_id, issuer)
    exchanged = exchange_with(good)  # the code survived every refusal: client authentication comes first
    assert exchanged.status_code == 200, exchanged.text
    with schema_context("acme"):
        assert AssertedTokenFamily.objects.filter(application__client_id=client_id).count() == 1

    refresh = {"grant_type": "refresh_token", "refresh_token": exchanged.json()["refresh_token"]}
    replayed = token_request(acme, **refresh, client_assertion_type=ASSERTION_TYPE, client_assertion=good)
    assert_invalid_client(replayed, "already used")
    assert refused_outcomes(client_id)[-1] == "replayed"
    # the same RSA key signs PS256 too (the key names no alg)
    ps256 = jwt.encode(signer.claims(client_id, issuer), signer.private_key, "PS256", {"kid": "k1"})
    refreshed = token_request(acme, **refresh, client_assertion_type=ASSERTION_TYPE, client_assertion=ps256)
    assert refreshed.status_code == 200, refreshed.text


def test_es256_assertion_and_no_downgrade_to_public(live, acme, documents, unique, settings):
    """A token family issued after an assertion needs one on every refresh, even once the client's
    document says ``none``; with ``OAUTH_CIMD_PRIVATE_KEY_JWT`` off, a document offering ``none`` is
    a public client and nothing advertises ``private_key_jwt``."""
    client_id = f"https://client.example.test/{unique}/es.json"
    signer = Signer("es", "ES256")
    document = {
        "client_id": client_id,
        "redirect_uris": [CHATGPT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": signer.jwks(),
    }
    serve(documents, f"/{unique}/es.json", document)
    client = Client(acme, client_id, None, CHATGPT_REDIRECT)
    browser = signed_in_browser(acme, "member@acme.test")
    code, verifier = authorization_code(browser, client)
    exchanged = code_exchange(client, code, verifier, **with_assertion(signer, client_id, acme))
    assert exchanged.status_code == 200, exchanged.text

    serve(documents, f"/{unique}/es.json", {**document, "token_endpoint_auth_method": "none"})
    with schema_context("acme"):  # the document's cache lifetime is over: DOT fetches it again
        Application.objects.filter(client_id=client_id).update(cimd_expires_at=timezone.now() - timedelta(seconds=1))
    refresh = {"grant_type": "refresh_token", "refresh_token": exchanged.json()["refresh_token"]}
    refresh["client_id"] = client_id
    assert_invalid_client(token_request(acme, **refresh), "private_key_jwt")
    assert profile_of(client_id).token_endpoint_auth_method == ""  # the document was read again
    # a new authorization under the public document needs no assertion
    code, verifier = authorization_code(browser, client)
    assert code_exchange(client, code, verifier, client_id=client_id).status_code == 200

    settings.OAUTH_CIMD_PRIVATE_KEY_JWT = False
    metadata = httpx.get(acme.url(".well-known/oauth-authorization-server"), timeout=20).json()
    assert "private_key_jwt" not in metadata["token_endpoint_auth_methods_supported"]
    assert "token_endpoint_auth_signing_alg_values_supported" not in metadata
    # the family issued after an assertion now refreshes as the public client it has become
    assert token_request(acme, **refresh).status_code == 200


def test_metadata_advertises_private_key_jwt(live, acme):
    metadata = httpx.get(acme.url(".well-known/oauth-authorization-server"), timeout=20).json()
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert metadata["revocation_endpoint_auth_methods_supported"] == metadata["token_endpoint_auth_methods_supported"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == ["ES256", "PS256", "RS256"]
    assert metadata["client_id_metadata_document_supported"] is True
