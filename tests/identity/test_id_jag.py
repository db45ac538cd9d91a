"""Enterprise-managed authorization per tenant: an ID-JAG from the tenant's own identity provider, presented
with the JWT bearer grant at ``H/t/<slug>/token/``, against real components over loopback:

- the enterprise's identity provider is the npm ``oidc-provider`` (tests/node_oidc/idp.mjs): the AI
  client signs its user in there (authorization code + PKCE), then exchanges the ID token for an ID-JAG
  with RFC 8693 at the IdP's token endpoint, which checks the ID token, what IT registered for the
  client (its client id at the tenant, the resources, the scopes) and signs the ID-JAG with the key its
  discovery document's ``jwks_uri`` serves. A second instance is another enterprise's IdP, trusted by
  the other tenant only;
- the official MCP Python SDK's identity-assertion client and the TS SDK v2 ``CrossAppAccessProvider``
  each obtain a token and call a tool, with no browser and no consent page;
- every refusal of the grant: wrong ``typ``, unknown issuer, another tenant's IdP, wrong ``aud``,
  another client presenting a client's ID-JAG, expired, the resource of another tenant, a ``sub`` that
  is no member here, a public client, ``alg: none`` and HS256 keyed with the IdP's public key; and the
  same client presenting its ID-JAG again, accepted;
- the scope (requested ∩ the ID-JAG's ∩ what the role may hold), an admin's demotion, the membership
  ended through SCIM, and the IdP's trust removed (only its tokens die).

Tenants ``jag_a`` and ``jag_b`` are this module's own; ``jag_a`` trusts ``corp`` (the first IdP) with
``--link-by-email`` for ``jag.example``, ``jag_b`` trusts ``other`` (the second IdP).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command
from django_tenants.utils import schema_context, tenant_context
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from oauth2_provider.models import AccessToken, RefreshToken

from identity.models import IdentityLink, IdentityProvider
from oauth.grant_types import ID_JAG_PROFILE, JWT_BEARER
from oauth.models import ClientProfile, IdJagToken
from observability.models import AuthEvent
from probe.mcp_client import MemoryStorage, connect
from tests.conftest import PASSWORD, LiveServer
from tests.identity.conftest import (
    AGENT,
    AGENT_CLIENT,
    AGENT_SECRET,
    CLIENT_SECRET,
    IdentityServer,
    SsoBrowser,
    start_idp,
)
from tests.mcp_raw import call
from tests.oauth_flow import Client, Tenant, obtain_tokens, register, signed_in_browser
from tests.support.cimd import Signer, forged

pytestmark = pytest.mark.timeout(180)

A, B = "jag_a", "jag_b"
DOMAIN = "jag.example"
ALL_SCOPES = "crm.read crm.write crm.admin connections"
TS_HARNESS = Path(__file__).resolve().parent.parent / "node" / "ts_sdk2"


@dataclass
class World:
    live: LiveServer
    corp: IdentityServer  # jag_a's IdP
    other: IdentityServer  # jag_b's IdP

    def tenant(self, slug: str) -> Tenant:
        return self.live.tenant(slug)


@pytest.fixture(scope="module")
def world(live_server_url: LiveServer) -> Iterator[World]:
    from crm.models import Contact
    from identity.services import add_provider
    from tenants.services import add_user, create_tenant

    for slug in (A, B):
        create_tenant(slug=slug, name=f"ID-JAG {slug[-1].upper()}")
        add_user(slug=slug, email=f"admin@{slug.replace('_', '-')}.test", password=PASSWORD, role="admin")
        with schema_context(slug):
            Contact.objects.create(name=f"Contact of {slug}", email=f"contact@{slug.replace('_', '-')}.test")
    sso_client = {
        "client_id": "platform-jag_a",
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [live_server_url.tenant_url(A, "sso/callback/")],
    }
    corp, other = start_idp([AGENT_CLIENT, sso_client]), start_idp([AGENT_CLIENT])
    try:
        for slug, key, server in ((A, "corp", corp), (B, "other", other)):
            with schema_context(slug):
                add_provider(
                    key=key,
                    issuer=server.issuer,
                    client_id=f"platform-{slug}",
                    client_secret=CLIENT_SECRET,
                    name=key.title(),
                    email_domains=[DOMAIN],
                    link_by_email=True,
                    accept_id_jag=True,
                )
        yield World(live_server_url, corp, other)
    finally:
        corp.close()
        other.close()


@pytest.fixture
def w(world: World, live) -> World:
    return world


# --- helpers -----------------------------------------------------------------------------------------
def new_member(w: World, slug: str = A, role: str = "member", *, idp: IdentityServer | None = None) -> tuple[str, str]:
    """A platform user who is a member of ``slug`` and the same person's account at the IdP (a verified
    email of the listed domain): (IdP account id, email)."""
    from tenants.services import add_user

    account = f"u{uuid.uuid4().hex[:10]}"
    email = f"{account}@{DOMAIN}"
    add_user(slug=slug, email=email, password=PASSWORD, role=role)
    (idp or w.corp).accounts(**{account: {"email": email, "email_verified": True}})
    return account, email


def agent(w: World, slug: str = A, *, idp: IdentityServer | None = None, scope: str = ALL_SCOPES) -> Client:
    """The AI client as a tenant admin sets it up: registered at the tenant (a confidential client with
    the JWT bearer grant, by DCR), and at the IdP: this client, audience = the tenant's issuer, the
    tenant's MCP resource, the scopes it may have."""
    tenant = w.tenant(slug)
    client = register(
        tenant,
        client_name="Enterprise agent",
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["authorization_code", "refresh_token", JWT_BEARER],
    )
    (idp or w.corp).manage(
        AGENT,
        tenant.base,
        platform_client_id=client.client_id,
        resources=[tenant.mcp, f"{tenant.base}/api"],
        scope=scope,
    )
    return client


def present(client: Client, assertion: str, **data: str) -> httpx.Response:
    """The JWT bearer grant at the client's tenant, client_secret_basic."""
    body = {"grant_type": JWT_BEARER, "assertion": assertion, **data}
    return httpx.post(client.tenant.url("token/"), data=body, auth=(client.client_id, client.client_secret), timeout=20)


def search(tenant: Tenant, token: str) -> httpx.Response:
    return call(tenant.mcp, token, "crm_search_contacts")


def ok(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json()["result"]["isError"] is False


def id_jag_events(slug: str, client_id: str) -> list[str]:
    with schema_context(slug):
        return list(
            AuthEvent.objects.filter(event="id_jag", client_id=client_id)
            .order_by("pk")
            .values_list("outcome", flat=True)
        )


def issued_to(client: Client):
    """The client's access tokens for users (not DCR's registration access token), in the current schema."""
    return AccessToken.objects.filter(application__client_id=client.client_id, user__isnull=False)


def claims_for(w: World, client: Client, account: str, **overrides) -> dict:
    now = int(time.time())
    return {
        "iss": w.corp.issuer,
        "sub": account,
        "aud": client.tenant.base,
        "client_id": client.client_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 120,
        "resource": client.tenant.mcp,
        "scope": "crm.read",
        "email": f"{account}@{DOMAIN}",
        "email_verified": True,
        **overrides,
    }


# --- metadata and registration ---------------------------------------------------------------------
def test_metadata_advertises_the_grant_where_an_idp_is_trusted(w):
    def metadata(slug: str) -> dict:
        response = httpx.get(f"{w.live.url}/.well-known/oauth-authorization-server/t/{slug}", timeout=20)
        assert response.status_code == 200
        return response.json()

    trusting = metadata(A)
    assert JWT_BEARER in trusting["grant_types_supported"]
    assert trusting["authorization_grant_profiles_supported"] == [ID_JAG_PROFILE]
    plain = metadata("globex")
    assert JWT_BEARER not in plain["grant_types_supported"]
    assert "authorization_grant_profiles_supported" not in plain


def test_registration_offers_the_grant_to_confidential_clients_of_trusting_tenants(w):
    grant_types = ["authorization_code", "refresh_token", JWT_BEARER]
    client = register(w.tenant(A), token_endpoint_auth_method="client_secret_post", grant_types=grant_types)
    with schema_context(A):
        assert ClientProfile.objects.get(application__client_id=client.client_id).jwt_bearer_grant
    answer = httpx.post(
        w.tenant(A).url("register/"),
        json={
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": grant_types,
            "application_type": "native",
        },
        timeout=20,
    )
    assert answer.status_code == 201 and JWT_BEARER in answer.json()["grant_types"]
    # an RFC 7592 update goes through the same policy: without the grant, the profile loses it
    registration = answer.json()
    updated = httpx.put(
        registration["registration_client_uri"],
        json={
            "redirect_uris": ["http://127.0.0.1:9/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "application_type": "native",
        },
        headers={"Authorization": f"Bearer {registration['registration_access_token']}"},
        timeout=20,
    )
    assert updated.status_code == 200 and JWT_BEARER not in updated.json()["grant_types"], updated.text
    with schema_context(A):
        assert not ClientProfile.objects.get(application__client_id=registration["client_id"]).jwt_bearer_grant
    for slug, method in ((A, "none"), ("globex", "client_secret_basic")):  # public client; no trusted IdP
        refused = httpx.post(
            w.tenant(slug).url("register/"),
            json={
                "redirect_uris": ["http://127.0.0.1:9/cb"],
                "token_endpoint_auth_method": method,
                "grant_types": grant_types,
                "application_type": "native",
            },
            timeout=20,
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata", refused.text
        assert "ID-JAG" in refused.json()["error_description"]


# --- real clients ------------------------------------------------------------------------------------
def test_the_python_sdk_identity_assertion_client_gets_a_token_and_calls_a_tool(w):
    """``mcp.client.auth.extensions.identity_assertion``: its assertion callback gets the ID-JAG from the
    IdP (the client's user signed in there, then RFC 8693); the SDK presents it (client_secret_post)
    and calls the tool. No browser at the platform, no consent page."""
    account, email = new_member(w)
    client = agent(w)
    id_token = w.corp.id_token(account)
    asked: list[tuple[str, str]] = []

    async def assertion(audience: str, resource: str) -> str:
        asked.append((audience, resource))
        response = await anyio.to_thread.run_sync(
            lambda: w.corp.exchange(id_token, audience, resource=resource, scope="crm.read")
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    storage = MemoryStorage()
    tenant = w.tenant(A)
    oauth = IdentityAssertionOAuthProvider(
        server_url=tenant.mcp,
        storage=storage,
        client_id=client.client_id,
        client_secret=client.client_secret,
        issuer=tenant.base,
        assertion_provider=assertion,
        scope="crm.read",
    )

    async def go():
        async with connect(tenant.mcp, oauth) as mcp:
            return await mcp.call_tool("crm_search_contacts", {})

    result = anyio.run(go)
    assert not result.is_error and result.structured_content["contacts"], result
    assert asked == [(tenant.base, tenant.mcp)]
    assert storage.tokens.refresh_token is None and storage.tokens.scope == "crm.read"
    with schema_context(A):
        issued = issued_to(client).select_related("user").get()
        assert issued.user.email == email and issued.resource == [tenant.mcp] and issued.scope == "crm.read"
        assert IdJagToken.objects.get(access_token=issued).provider.key == "corp"
        assert not RefreshToken.objects.filter(application__client_id=client.client_id).exists()
    assert id_jag_events(A, client.client_id) == ["accepted_email"]


def test_the_ts_sdk_cross_app_access_provider_gets_a_token_and_calls_a_tool(w):
    """``@modelcontextprotocol/client`` 2.4.0: ``CrossAppAccessProvider`` discovers the authorization
    server from the resource metadata, its assertion callback does the RFC 8693 exchange at the IdP
    with the SDK's own ``discoverAndRequestJwtAuthGrant``, and it presents the ID-JAG
    (client_secret_basic). The ID token comes from the client's sign-in at the IdP, as an app's would."""
    node = shutil.which("node")
    assert node and (TS_HARNESS / "node_modules" / "@modelcontextprotocol" / "client").is_dir(), "run `make test`"
    account, email = new_member(w)
    client = agent(w, scope="crm.read crm.write")
    config = {
        "server": w.tenant(A).mcp,
        "issuer": w.tenant(A).base,
        "idp": w.corp.issuer,
        "idToken": w.corp.id_token(account),
        "idpClientId": AGENT,
        "idpClientSecret": AGENT_SECRET,
        "clientId": client.client_id,
        "clientSecret": client.client_secret,
    }
    done = subprocess.run(
        [node, "cross_app.mjs"], cwd=TS_HARNESS, input=json.dumps(config), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    events = {e["event"]: e for e in map(json.loads, done.stdout.splitlines())}
    assert events["assertion"]["authorizationServerUrl"].rstrip("/") == w.tenant(A).base
    assert events["assertion"]["resourceUrl"] == w.tenant(A).mcp
    assert events["called"]["isError"] is False and events["called"]["contacts"] > 0
    with schema_context(A):
        issued = issued_to(client).select_related("user").get()
        assert issued.user.email == email and IdJagToken.objects.filter(access_token=issued).exists()


def test_the_same_client_may_present_its_id_jag_again(w):
    account, _ = new_member(w)
    client = agent(w)
    assertion = w.corp.id_jag(account, w.tenant(A).base, scope="crm.read")
    first, second = present(client, assertion), present(client, assertion)
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert first.json()["access_token"] != second.json()["access_token"]
    assert "refresh_token" not in first.json() and first.json()["scope"] == "crm.read"
    assert ok(search(w.tenant(A), first.json()["access_token"])) and ok(
        search(w.tenant(A), second.json()["access_token"])
    )


# --- refusals ----------------------------------------------------------------------------------------
def _refusal_cases():
    """(name, how to make the assertion, expected error, audit outcome); ``make(w, client, account)``."""

    def signed(**overrides):
        """Signed by the trusted IdP's own key; an override may be a function of the client."""
        header = overrides.pop("header", {"typ": "oauth-id-jag+jwt"})

        def make(w, client, account):
            claims = {k: v(client) if callable(v) else v for k, v in overrides.items()}
            return w.corp.sign(claims_for(w, client, account, **claims), **header)

        return make

    def hmac_with_public_key(w, client, account):
        jwk = httpx.get(f"{w.corp.issuer}/jwks", timeout=10).json()["keys"][0]
        public_pem = pyjwt.algorithms.RSAAlgorithm.from_jwk(jwk).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "oauth-id-jag+jwt", "kid": jwk["kid"]}
        return forged(header, claims_for(w, client, account), public_pem)

    def other_key(w, client, account):
        header = {"typ": "oauth-id-jag+jwt", "kid": "not-the-idps"}
        return pyjwt.encode(claims_for(w, client, account), Signer("x").private_key, "RS256", header)

    def unsigned(w, client, account):
        return forged({"alg": "none", "typ": "oauth-id-jag+jwt"}, claims_for(w, client, account), None)

    def other_tenants_idp(w, client, account):
        # jag_b's IdP, asked for an ID-JAG whose audience is jag_a: jag_a does not trust that issuer
        w.other.accounts(**{account: {"email": f"{account}@{DOMAIN}", "email_verified": True}})
        w.other.manage(
            AGENT,
            client.tenant.base,
            platform_client_id=client.client_id,
            resources=[client.tenant.mcp],
            scope="crm.read",
        )
        return w.other.id_jag(account, client.tenant.base)

    def resource_of_other_tenant(w, client, account):
        return w.corp.sign(claims_for(w, client, account, resource=w.tenant(B).mcp), typ="oauth-id-jag+jwt")

    return [
        ("wrong typ", signed(header={"typ": "JWT"}), "invalid_grant", "wrong_typ"),
        ("no typ", signed(header={}), "invalid_grant", "wrong_typ"),
        ("unknown issuer", signed(iss="https://idp.unknown.example"), "invalid_grant", "unknown_issuer"),
        ("another tenant's IdP", other_tenants_idp, "invalid_grant", "unknown_issuer"),
        ("wrong aud", signed(aud="http://127.0.0.1:9/t/jag_a"), "invalid_grant", "wrong_audience"),
        (
            "aud of two values",
            signed(aud=lambda c: [c.tenant.base, "https://elsewhere.example"]),
            "invalid_grant",
            "multiple_aud",
        ),
        ("expired", signed(iat=int(time.time()) - 400, exp=int(time.time()) - 100), "invalid_grant", "expired"),
        ("too long-lived", signed(exp=int(time.time()) + 3600), "invalid_grant", "too_long_lived"),
        ("no jti", signed(jti=None), "invalid_grant", "missing_claim"),
        ("resource of another tenant", resource_of_other_tenant, "invalid_grant", "wrong_resource"),
        ("alg none", unsigned, "invalid_grant", "alg_not_allowed"),
        ("HS256 keyed with the IdP's public key", hmac_with_public_key, "invalid_grant", "alg_not_allowed"),
        ("signed by another key", other_key, "invalid_grant", "unknown_key"),
    ]


@pytest.mark.parametrize(("name", "make", "error", "outcome"), _refusal_cases(), ids=[c[0] for c in _refusal_cases()])
def test_refused_assertions(w, name, make, error, outcome):
    account, _ = new_member(w)
    client = agent(w)
    assertion = make(w, client, account)
    refused = present(client, assertion)
    assert refused.status_code == 400 and refused.json()["error"] == error, (name, refused.text)
    assert refused.json()["error_description"] and assertion not in refused.text
    assert id_jag_events(A, client.client_id)[-1] == outcome
    with schema_context(A):
        assert not issued_to(client).exists()


def test_another_client_presenting_a_clients_id_jag_is_refused(w):
    account, _ = new_member(w)
    owner, thief = agent(w), agent(w)  # the IdP now issues for ``thief``: ask for the owner's by hand
    assertion = w.corp.sign(claims_for(w, owner, account), typ="oauth-id-jag+jwt")
    refused = present(thief, assertion)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    assert "client_id" in refused.json()["error_description"]
    assert id_jag_events(A, thief.client_id) == ["client_mismatch"]
    assert present(owner, assertion).status_code == 200  # the owner still may


def test_a_sub_that_is_no_member_here_is_refused(w):
    client = agent(w)
    stranger = f"u{uuid.uuid4().hex[:10]}"  # an IdP account with an email of an unlisted domain: no link, no JIT
    w.corp.accounts(**{stranger: {"email": f"{stranger}@elsewhere.example", "email_verified": True}})
    refused = present(client, w.corp.id_jag(stranger, w.tenant(A).base))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    member_of_b, _ = new_member(w, B)  # a platform user of the listed domain, member of jag_b only
    w.corp.accounts(**{member_of_b: {"email": f"{member_of_b}@{DOMAIN}", "email_verified": True}})
    refused = present(client, w.corp.id_jag(member_of_b, w.tenant(A).base))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    assert id_jag_events(A, client.client_id) == ["no_account", "not_a_member"]


def test_a_public_client_is_unauthorized(w):
    account, _ = new_member(w)
    public = register(w.tenant(A), token_endpoint_auth_method="none")
    w.corp.manage(
        AGENT, w.tenant(A).base, platform_client_id=public.client_id, resources=[w.tenant(A).mcp], scope="crm.read"
    )
    assertion = w.corp.id_jag(account, w.tenant(A).base)
    answer = httpx.post(
        w.tenant(A).url("token/"),
        data={"grant_type": JWT_BEARER, "assertion": assertion, "client_id": public.client_id},
        timeout=20,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "unauthorized_client", answer.text
    assert "public" in answer.json()["error_description"]
    # a confidential client that did not register the grant is not authorized either
    plain = register(w.tenant(A), token_endpoint_auth_method="client_secret_basic")
    refused = present(plain, w.corp.sign(claims_for(w, plain, account), typ="oauth-id-jag+jwt"))
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client", refused.text


def test_a_resource_parameter_other_than_the_id_jags_is_invalid_target(w):
    account, _ = new_member(w)
    client = agent(w)
    assertion = w.corp.id_jag(account, w.tenant(A).base, resource=w.tenant(A).mcp)
    refused = present(client, assertion, resource=f"{w.tenant(A).base}/api")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target", refused.text
    api = present(client, w.corp.id_jag(account, w.tenant(A).base, resource=f"{w.tenant(A).base}/api"))
    assert api.status_code == 200, api.text
    at_mcp = search(w.tenant(A), api.json()["access_token"])  # bound to the API: refused at /mcp
    assert at_mcp.status_code == 401


# --- scope, role, membership, trust --------------------------------------------------------------------
def test_scope_is_the_request_and_the_id_jag_and_the_role(w):
    account, _ = new_member(w)
    admin_account, _ = new_member(w, role="admin")
    client = agent(w)
    base = w.tenant(A).base

    def granted(who: str, *, idp_scope: str | None = None, requested: str | None = None) -> httpx.Response:
        extra = {"scope": requested} if requested else {}
        return present(client, w.corp.id_jag(who, base, **({"scope": idp_scope} if idp_scope else {})), **extra)

    # a member: admin-only scopes drop out whatever the IdP vouched for
    assert granted(account, requested="crm.read crm.admin").json()["scope"] == "crm.read"
    assert granted(account).json()["scope"] == "connections crm.read crm.write"  # the ID-JAG's, less crm.admin
    only_admin = granted(account, requested="crm.admin")
    assert only_admin.status_code == 400 and only_admin.json()["error"] == "invalid_scope", only_admin.text
    # the ID-JAG bounds the request
    narrow = granted(account, idp_scope="crm.read", requested="crm.write")
    assert narrow.status_code == 400 and narrow.json()["error"] == "invalid_scope", narrow.text
    # an admin may have the admin-only scope the IdP vouched for
    assert granted(admin_account, requested="crm.read crm.admin").json()["scope"] == "crm.admin crm.read"


def test_an_admin_demoted_loses_the_admin_scope_at_the_next_call(w):
    from crm.models import Contact
    from tenants.services import add_user

    account, email = new_member(w, role="admin")
    client = agent(w)
    token = present(client, w.corp.id_jag(account, w.tenant(A).base, scope="crm.read crm.admin")).json()
    assert token["scope"] == "crm.admin crm.read"
    with schema_context(A):
        first, second = Contact.objects.create(name="Delete me 1"), Contact.objects.create(name="Delete me 2")
    url = w.tenant(A).mcp
    assert ok(call(url, token["access_token"], "crm_delete_contact", {"contact_id": first.pk}))
    add_user(slug=A, email=email, password=None, role="member")  # demoted
    after = call(url, token["access_token"], "crm_delete_contact", {"contact_id": second.pk})
    assert after.status_code == 403 and 'error="insufficient_scope"' in after.headers["www-authenticate"]
    with schema_context(A):
        assert Contact.objects.filter(pk=second.pk).exists()
    again = present(client, w.corp.id_jag(account, w.tenant(A).base, scope="crm.admin"))
    assert again.status_code == 400 and again.json()["error"] == "invalid_scope"


def test_membership_ended_through_scim_refuses_the_next_call_and_the_next_id_jag(w):
    from identity.scim.tokens import issue_token

    account, email = new_member(w)
    client = agent(w)
    assertion = w.corp.id_jag(account, w.tenant(A).base, scope="crm.read")
    token = present(client, assertion).json()["access_token"]
    assert ok(search(w.tenant(A), token))
    with schema_context(A):
        scim_token, _ = issue_token()
    scim = httpx.Client(base_url=w.tenant(A).url("scim/v2"), headers={"Authorization": f"Bearer {scim_token}"})
    found = scim.get("/Users", params={"filter": f'userName eq "{email}"'}).json()["Resources"][0]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    assert scim.patch(f"/Users/{found['id']}", json=patch).status_code == 200
    after = search(w.tenant(A), token)
    assert after.status_code == 401 and not ok(after)  # the token of a deactivated user is no token
    again = present(client, assertion)  # the same, still valid ID-JAG: no member any more
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    assert id_jag_events(A, client.client_id)[-1] == "not_a_member"


def test_removing_an_idps_trust_revokes_exactly_its_tokens(w):
    """A member holds three tokens at jag_a: one from ``corp``'s ID-JAG, one from ``other``'s (trusted
    by jag_a too for this test), one from the consent page. ``tenant_idp_add ... --no-accept-id-jag``
    kills the first only; deleting ``other``'s record (as in the tenant admin) kills the second."""
    from identity.services import add_provider

    account, email = new_member(w)
    w.other.accounts(**{account: {"email": email, "email_verified": True}})
    with schema_context(A):
        add_provider(
            key="other-in-a",
            issuer=w.other.issuer,
            client_id="platform-jag_a",
            client_secret=CLIENT_SECRET,
            accept_id_jag=True,
            link_by_email=True,
            email_domains=[DOMAIN],
        )
    try:
        client = agent(w)
        w.other.manage(
            AGENT, w.tenant(A).base, platform_client_id=client.client_id, resources=[w.tenant(A).mcp], scope="crm.read"
        )
        from_corp = present(client, w.corp.id_jag(account, w.tenant(A).base, scope="crm.read")).json()["access_token"]
        from_other = present(client, w.other.id_jag(account, w.tenant(A).base)).json()["access_token"]
        consented = obtain_tokens(signed_in_browser(w.tenant(A), email), register(w.tenant(A)))["access_token"]
        assert all(ok(search(w.tenant(A), t)) for t in (from_corp, from_other, consented))

        call_command("tenant_idp_add", A, "corp", "--issuer", w.corp.issuer, "--no-accept-id-jag", stdout=io.StringIO())
        assert not ok(search(w.tenant(A), from_corp))
        assert ok(search(w.tenant(A), from_other)) and ok(search(w.tenant(A), consented))
        refused = present(client, w.corp.id_jag(account, w.tenant(A).base))
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

        with schema_context(A):
            IdentityProvider.objects.filter(key="other-in-a").delete()
        assert not ok(search(w.tenant(A), from_other)) and ok(search(w.tenant(A), consented))
    finally:
        call_command("tenant_idp_add", A, "corp", "--issuer", w.corp.issuer, "--accept-id-jag", stdout=io.StringIO())
        with schema_context(A):
            IdentityProvider.objects.filter(key="other-in-a").delete()


def test_the_sweep_revokes_tokens_of_an_idp_no_longer_trusted(w):
    """If the trust was removed without the receiver (a raw UPDATE), ``oauth.revoke_departed`` does it."""
    from oauth.sweeps import revoke_departed
    from tenants.selectors import get_tenant

    account, _ = new_member(w)
    client = agent(w)
    token = present(client, w.corp.id_jag(account, w.tenant(A).base, scope="crm.read")).json()["access_token"]
    try:
        with tenant_context(get_tenant(A)):
            IdentityProvider.objects.filter(key="corp").update(accept_id_jag=False)  # no signal
            assert ok(search(w.tenant(A), token))
            assert revoke_departed(tenant_active=True)["untrusted_id_jag_tokens_revoked"] >= 1
        assert not ok(search(w.tenant(A), token))
    finally:
        with schema_context(A):
            IdentityProvider.objects.filter(key="corp").update(accept_id_jag=True)


# --- how the member is found ---------------------------------------------------------------------------
def test_the_link_an_sso_sign_in_recorded_finds_the_member(w):
    account, email = new_member(w)
    browser = SsoBrowser(w.live, A).as_account(account)
    assert browser.sign_in("corp").status_code == 302 and browser.signed_in()
    with schema_context(A):
        assert IdentityLink.objects.filter(provider__key="corp", subject=account).exists()
    w.corp.accounts(**{account: {"email": f"{account}@elsewhere.example", "email_verified": True}})  # email no help
    client = agent(w)
    token = present(client, w.corp.id_jag(account, w.tenant(A).base, scope="crm.read"))
    assert token.status_code == 200, token.text
    with schema_context(A):
        assert issued_to(client).get().user.email == email
    assert id_jag_events(A, client.client_id) == ["accepted_link"]


def test_jit_creates_the_member_as_the_idp_record_allows(w):
    from accounts.models import User
    from identity.services import add_provider
    from tenants.selectors import active_membership, get_tenant

    client = agent(w)
    newcomer = f"u{uuid.uuid4().hex[:10]}"
    w.corp.accounts(**{newcomer: {"email": f"{newcomer}@{DOMAIN}", "email_verified": True}})
    assert present(client, w.corp.id_jag(newcomer, w.tenant(A).base)).status_code == 400  # jit_role none
    with schema_context(A):
        add_provider(key="corp", issuer=w.corp.issuer, jit_role="member")
    try:
        # the client's first requests run in parallel: every one of them gets a token, one member is made
        assertion, barrier = w.corp.id_jag(newcomer, w.tenant(A).base, scope="crm.read"), threading.Barrier(4)

        def first_presentation(_: int) -> httpx.Response:
            barrier.wait(timeout=30)
            return present(client, assertion)

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(first_presentation, range(4)))
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        assert ok(search(w.tenant(A), answers[0].json()["access_token"]))
    finally:
        with schema_context(A):
            add_provider(key="corp", issuer=w.corp.issuer, jit_role="none")
    user = User.objects.get(email=f"{newcomer}@{DOMAIN}")
    assert active_membership(user.pk, get_tenant(A).pk).role == "member"
    outcomes = id_jag_events(A, client.client_id)
    assert outcomes[0] == "no_account" and outcomes.count("accepted_jit") == 1 and len(outcomes) == 5, outcomes


def test_a_cimd_client_with_private_key_jwt_presents_an_id_jag(w, settings, document_server):
    """A Client ID Metadata Document declaring private_key_jwt and the JWT bearer grant (as Claude's
    lists it): the client authenticates with its assertion and presents the ID-JAG."""
    settings.OAUTH_CIMD_TEST_LOOPBACK_ORIGINS = {"agent.example.test": document_server.url}
    signer = Signer("agent-key")
    client_id = f"https://agent.example.test/{uuid.uuid4().hex[:8]}/client.json"
    document_server.documents[client_id.removeprefix("https://agent.example.test")] = json.dumps(
        {
            "client_id": client_id,
            "client_name": "Enterprise agent (CIMD)",
            "redirect_uris": ["https://agent.example.test/callback"],
            "grant_types": ["authorization_code", "refresh_token", JWT_BEARER],
            "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": signer.jwks(),
        }
    ).encode()
    account, _ = new_member(w)
    tenant = w.tenant(A)
    w.corp.manage(AGENT, tenant.base, platform_client_id=client_id, resources=[tenant.mcp], scope="crm.read")
    assertion = w.corp.id_jag(account, tenant.base)
    data = {
        "grant_type": JWT_BEARER,
        "assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    answer = httpx.post(
        tenant.url("token/"), data={**data, "client_assertion": signer.assertion(client_id, tenant.base)}, timeout=20
    )
    assert answer.status_code == 200, answer.text
    assert ok(search(tenant, answer.json()["access_token"]))
    without = httpx.post(
        tenant.url("token/"),
        data={"grant_type": JWT_BEARER, "assertion": assertion, "client_id": client_id},
        timeout=20,
    )
    assert without.status_code == 401 and without.json()["error"] == "invalid_client", without.text


# --- the tenant admin ----------------------------------------------------------------------------------
def test_a_client_the_tenant_admin_registers_for_the_grant_presents_id_jags(w):
    """The tenant admin registers the enterprise's client (a confidential application, "May present
    ID-JAGs" ticked on its profile); unticking "accept ID-JAGs" on the IdP record revokes its tokens."""
    import re

    from tests.admin_http import AdminSession

    admin = AdminSession(w.tenant(A), "admin@jag-a.test", PASSWORD).login()
    page = admin.get("oauth2_provider/application/add/")
    assert page.status_code == 200 and 'name="profile-0-jwt_bearer_grant"' in page.text
    client_id = re.search(r'name="client_id"[^>]*value="([^"]+)"', page.text).group(1)
    secret = f"admin-typed-{uuid.uuid4().hex}"
    added = admin.post(
        "oauth2_provider/application/add/",
        {
            "client_id": client_id,
            "name": "Enterprise agent (admin)",
            "redirect_uris": "https://agent.example/callback",
            "post_logout_redirect_uris": "",
            "allowed_origins": "",
            "client_type": "confidential",
            "authorization_grant_type": "authorization-code",
            "client_secret": secret,
            "hash_client_secret": "on",
            "algorithm": "",
            "profile-TOTAL_FORMS": "1",
            "profile-INITIAL_FORMS": "0",
            "profile-MIN_NUM_FORMS": "0",
            "profile-MAX_NUM_FORMS": "1",
            "profile-0-application_type": "web",
            "profile-0-challenge_channel": "http",
            "profile-0-jwt_bearer_grant": "on",
        },
    )
    assert added.status_code == 302, added.text[:3000]
    client = Client(w.tenant(A), client_id, secret)
    account, _ = new_member(w)
    w.corp.manage(AGENT, w.tenant(A).base, platform_client_id=client_id, resources=[w.tenant(A).mcp], scope="crm.read")
    token = present(client, w.corp.id_jag(account, w.tenant(A).base))
    assert token.status_code == 200, token.text
    assert ok(search(w.tenant(A), token.json()["access_token"]))

    with schema_context(A):
        corp = IdentityProvider.objects.get(key="corp")
    change = f"identity/identityprovider/{corp.pk}/change/"
    form = {
        "name": corp.name,
        "issuer": corp.issuer,
        "client_id": corp.client_id,
        "client_secret": "",
        "jit_role": corp.jit_role,
        "role_claim": "",
        "admin_value": "",
        "organization_claim": "",
        "organization_value": "",
        "is_enabled": "on",
    }
    try:
        assert admin.post(change, form).status_code == 302  # accept_id_jag left unticked
        assert not ok(search(w.tenant(A), token.json()["access_token"]))
    finally:
        assert admin.post(change, {**form, "accept_id_jag": "on"}).status_code == 302
