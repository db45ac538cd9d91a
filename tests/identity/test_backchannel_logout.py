"""OpenID Connect Back-Channel Logout 1.0 at ``H/t/<slug>/sso/backchannel-logout/``: the npm
``oidc-provider`` signs and sends real logout tokens; the checks of §2.6 are driven with tokens
signed by a key of the test's own (an IdP served from a document server)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import pytest
from django_tenants.utils import schema_context
from joserfc import jwt
from joserfc.jwk import RSAKey

from accounts.models import User
from identity.models import IdentityLink, SignInSession
from observability.models import AuthEvent
from tests.identity.conftest import add_idp, new_account
from tests.mcp_raw import call
from tests.oauth_flow import Browser, obtain_tokens, register

DOMAIN = "idp.example"
EVENT = {"http://schemas.openid.net/event/backchannel-logout": {}}


def test_the_providers_logout_token_ends_that_session_once(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    account = new_account()
    person = browser("sso_a", account)
    assert person.sign_in(key).status_code == 302 and person.signed_in()
    sid = idp.sid_of(account)
    with schema_context("sso_a"):
        assert SignInSession.objects.filter(provider__key=key, sid=sid).count() == 1

    sent = idp.logout_token("sso_a", account, sid, send=True)  # the IdP posts it to the platform itself
    assert sent["status"] == 200
    assert not person.signed_in()  # the next request of that browser is signed out
    with schema_context("sso_a"):
        assert not SignInSession.objects.filter(provider__key=key, sid=sid).exists()

    replay = httpx.post(
        live.tenant_url("sso_a", "sso/backchannel-logout/"), data={"logout_token": sent["logout_token"]}
    )
    assert replay.status_code == 400 and "already used" in replay.json()["error_description"]


def test_a_logout_token_with_sub_only_ends_every_session_of_the_user_here_and_revokes_no_grant(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    account = new_account()
    first, second = browser("sso_a", account), browser("sso_a", account)
    assert first.sign_in(key).status_code == 302 and second.sign_in(key).status_code == 302
    bystander = browser("sso_a", new_account())
    assert bystander.sign_in(key).status_code == 302
    # an MCP client authorized by this user keeps its tokens: logout is not deprovisioning
    client = register(live.tenant("sso_a"), client_name="kept across logout")
    consenting = Browser(live.tenant("sso_a"), f"{account}@{DOMAIN}", "", http=first.http)
    tokens = obtain_tokens(consenting, client, scope="crm.read")

    token = idp.logout_token("sso_a", account)["logout_token"]  # no sid: every session of the user
    response = httpx.post(live.tenant_url("sso_a", "sso/backchannel-logout/"), data={"logout_token": token})
    assert response.status_code == 200
    assert not first.signed_in() and not second.signed_in()
    assert bystander.signed_in()
    answer = call(live.tenant("sso_a").mcp, tokens["access_token"], "crm_search_contacts", {"query": ""})
    assert answer.status_code == 200 and not answer.json()["result"].get("isError")
    user = User.objects.get(email=f"{account}@{DOMAIN}")
    with schema_context("sso_a"):
        assert AuthEvent.objects.filter(event="backchannel_logout", outcome="ended_2").exists()
        assert IdentityLink.objects.filter(user_id=user.pk).exists()


# --- §2.6, with a key of the test's own ---------------------------------------------------------


@pytest.fixture
def own_idp(live, sso_tenants, document_server):
    """An identity provider of ``sso_b`` whose discovery document and keys the test serves, so it can
    sign logout tokens with any claims; a member linked to it, signed in with a session id."""
    from identity.services import add_provider, record_sign_in

    key = RSAKey.generate_key(2048, parameters={"kid": "test-key"}, private=True)
    issuer = document_server.url
    document_server.serve_discovery(
        authorization_endpoint=f"{issuer}/authorize",
        token_endpoint=f"{issuer}/token",
        jwks_uri=f"{issuer}/jwks",
        id_token_signing_alg_values_supported=["RS256"],
    )
    document_server.documents["/jwks"] = json.dumps({"keys": [key.as_dict(private=False)]}).encode()
    provider_key = f"own-{uuid.uuid4().hex[:6]}"
    subject = new_account()
    user = User.objects.create_user(email=f"{subject}@own.example", password=None)
    with schema_context("sso_b"):
        provider, _ = add_provider(key=provider_key, issuer=issuer, client_id="own-client", client_secret="s")
        IdentityLink.objects.create(provider=provider, subject=subject, user=user)

        class _Request:  # a sign-in session as the SSO callback records it
            META = {"HTTP_USER_AGENT": "test", "REMOTE_ADDR": "127.0.0.1"}

            class session:
                session_key = uuid.uuid4().hex

        record_sign_in(request=_Request, user_id=user.pk, provider=provider, sid="sid-1")
    return {"key": key, "issuer": issuer, "subject": subject, "user": user}


def _claims(own, **changes):
    now = int(time.time())
    claims = {
        "iss": own["issuer"],
        "aud": "own-client",
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "events": EVENT,
        "sub": own["subject"],
        "sid": "sid-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(own, claims, header=None):
    return jwt.encode({"alg": "RS256", "kid": "test-key", "typ": "logout+jwt", **(header or {})}, claims, own["key"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _post(live, token: str) -> httpx.Response:
    return httpx.post(live.tenant_url("sso_b", "sso/backchannel-logout/"), data={"logout_token": token})


def test_a_valid_token_of_the_own_provider_is_accepted(live, own_idp):
    assert _post(live, _signed(own_idp, _claims(own_idp))).status_code == 200
    with schema_context("sso_b"):
        assert not SignInSession.objects.filter(user_id=own_idp["user"].pk).exists()


@pytest.mark.parametrize(
    ("changes", "header"),
    [
        ({"aud": "another-client"}, None),
        ({"iss": "https://other.example"}, None),
        ({"iat": None}, None),
        ({"iat": int(time.time()) - 3600}, None),
        ({"exp": int(time.time()) - 3600}, None),
        ({"jti": None}, None),
        ({"events": None}, None),
        ({"events": {"http://schemas.openid.net/event/backchannel-logout": "yes"}}, None),
        ({"sub": None, "sid": None}, None),
        ({"nonce": "n"}, None),
        ({}, {"typ": "JWT+id"}),
    ],
    ids=[
        "aud",
        "iss",
        "no-iat",
        "old-iat",
        "expired",
        "no-jti",
        "no-events",
        "event-not-object",
        "no-sub-sid",
        "nonce",
        "typ",
    ],
)
def test_logout_tokens_that_break_a_rule_of_2_6_are_refused(live, own_idp, changes, header):
    response = _post(live, _signed(own_idp, _claims(own_idp, **changes), header))
    assert response.status_code == 400, response.text
    with schema_context("sso_b"):
        assert SignInSession.objects.filter(user_id=own_idp["user"].pk).exists()  # nothing ended


def test_forged_signatures_are_refused(live, own_idp):
    claims = _claims(own_idp)
    other = RSAKey.generate_key(2048, parameters={"kid": "test-key"}, private=True)
    assert _post(live, jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, other)).status_code == 400
    payload = _b64(json.dumps(claims).encode())
    unsigned = f"{_b64(json.dumps({'alg': 'none'}).encode())}.{payload}."
    assert _post(live, unsigned).status_code == 400
    # HS256 "signed" with the provider's public key as the HMAC secret (the algorithm-confusion attack)
    public = json.dumps(own_idp["key"].as_dict(private=False)).encode()
    head = _b64(json.dumps({"alg": "HS256", "kid": "test-key"}).encode())
    mac = _b64(hmac.new(public, f"{head}.{payload}".encode(), hashlib.sha256).digest())
    assert _post(live, f"{head}.{payload}.{mac}").status_code == 400
    assert _post(live, "not-a-jwt").status_code == 400
    assert _post(live, "").status_code == 400
    with schema_context("sso_b"):
        assert SignInSession.objects.filter(user_id=own_idp["user"].pk).exists()
