"""Fixtures of the enterprise-identity tests: two tenants of their own (``sso_a``, ``sso_b``), the npm
``oidc-provider`` as their identity provider (tests/node_oidc/idp.mjs) on a free loopback port, and a
browser (httpx, a cookie jar) that signs in through it the way a person's browser would.

For enterprise-managed authorization (test_id_jag.py) the same IdP also plays the enterprise's side of
an AI client: ``IdentityServer.id_token`` signs an account in to the client registered there (the
authorization code flow, headless) and ``IdentityServer.id_jag`` exchanges that ID token for an ID-JAG
(RFC 8693), after IT registered the client's managed access (``IdentityServer.manage``)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import httpx
import pytest
from django_tenants.utils import schema_context

from tests.conftest import PASSWORD, LiveServer
from tests.oauth_flow import hidden_inputs, pkce_pair, query_params
from tests.support import node_oidc

SLUGS = ("sso_a", "sso_b")
CLIENT_SECRET = "test-only-idp-client-secret"  # test-only


# an AI client as registered at the enterprise's IdP: it signs its user in there and exchanges the ID
# token for ID-JAGs (RFC 8693, client_secret_post as the TS SDK's requestJwtAuthorizationGrant sends)
AGENT = "ai-agent"
AGENT_SECRET = "test-only-ai-agent-secret"  # test-only
AGENT_REDIRECT = "http://127.0.0.1:9/agent-callback"  # never contacted
AGENT_CLIENT = {
    "client_id": AGENT,
    "client_secret": AGENT_SECRET,
    "redirect_uris": [AGENT_REDIRECT],
    "grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"],
    "token_endpoint_auth_method": "client_secret_post",
}


def client_id(slug: str) -> str:
    return f"platform-{slug}"


@dataclass
class IdentityServer:
    issuer: str
    process: subprocess.Popen = field(repr=False)

    def accounts(self, **claims: dict) -> None:
        """Set the claims of accounts (by account id) beside their ``sub``."""
        response = httpx.post(f"{self.issuer}/_test/accounts", json=claims, timeout=10)
        assert response.status_code == 204, response.text

    def logout_token(self, slug: str, sub: str, sid: str = "", *, send: bool = False) -> dict:
        params = {"client_id": client_id(slug), "sub": sub, "sid": sid, "send": "1" if send else "0"}
        response = httpx.post(f"{self.issuer}/_test/logout_token", params=params, timeout=20)
        assert response.status_code == 200, response.text
        return response.json()

    def sid_of(self, account: str) -> str:
        return httpx.get(f"{self.issuer}/_test/sessions", timeout=10).json()[account]

    # --- the enterprise's side of enterprise-managed authorization (ID-JAGs) -------------------------
    def manage(self, client: str, audience: str, *, platform_client_id: str, resources: list[str], scope: str) -> None:
        """What IT registers at the IdP: ``client`` (registered here) may get ID-JAGs for the
        authorization server ``audience`` (its issuer), naming ``platform_client_id`` (the client's id
        there), for ``resources``, with at most ``scope``."""
        access = {"client_id": platform_client_id, "resources": resources, "scope": scope}
        response = httpx.post(f"{self.issuer}/_test/managed", json={client: {audience: access}}, timeout=10)
        assert response.status_code == 204, response.text

    def id_token(self, account: str, client: str = AGENT, secret: str = AGENT_SECRET) -> str:
        """``account`` signs in to ``client`` (authorization code + PKCE, the IdP's headless
        interaction): the client's ID token."""
        verifier, challenge = pkce_pair()
        with httpx.Client(follow_redirects=False, timeout=20, cookies={"test_account": account}) as http:
            location = f"{self.issuer}/auth?" + urlencode(
                {
                    "client_id": client,
                    "response_type": "code",
                    "scope": "openid email profile",
                    "redirect_uri": AGENT_REDIRECT,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "state": uuid.uuid4().hex,
                    "nonce": uuid.uuid4().hex,
                }
            )
            for _ in range(10):
                if location.startswith(AGENT_REDIRECT):
                    break
                response = http.get(location)
                assert response.is_redirect, (response.status_code, response.text[:300])
                location = urljoin(location, response.headers["location"])
            code = query_params(location)["code"]
            token = http.post(
                f"{self.issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": AGENT_REDIRECT,
                    "code_verifier": verifier,
                    "client_id": client,
                    "client_secret": secret,
                },
            )
        assert token.status_code == 200, token.text
        return token.json()["id_token"]

    def exchange(
        self, id_token: str, audience: str, *, resource: str | None = None, scope: str | None = None,
        client: str = AGENT, secret: str = AGENT_SECRET,
    ) -> httpx.Response:  # fmt: skip
        """RFC 8693 at the IdP: the client's ID token for an ID-JAG for ``audience``."""
        data = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
            "subject_token": id_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "audience": audience,
            "client_id": client,
            "client_secret": secret,
            **({"resource": resource} if resource else {}),
            **({"scope": scope} if scope else {}),
        }
        return httpx.post(f"{self.issuer}/token", data=data, timeout=20)

    def id_jag(self, account: str, audience: str, **options) -> str:
        """A fresh ID-JAG for ``account`` and ``audience``, the whole enterprise side in one call."""
        response = self.exchange(self.id_token(account), audience, **options)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:id-jag" and body["token_type"] == "N_A"
        return body["access_token"]

    def sign(self, claims: dict, **header) -> str:
        """Any JWT signed with the IdP's key (for the refusals)."""
        response = httpx.post(f"{self.issuer}/_test/sign", json={"header": header, "claims": claims}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["jwt"]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_idp(clients: list[dict]) -> IdentityServer:
    """tests/node_oidc/idp.mjs on a free loopback port with these clients (stop it with ``close``)."""
    return IdentityServer(*node_oidc.start("idp.mjs", clients, who="enterprise-identity"))


@pytest.fixture(scope="session")
def sso_tenants(live_server_url: LiveServer) -> tuple[str, ...]:
    from tenants.services import add_user, create_tenant

    for slug in SLUGS:
        create_tenant(slug=slug, name=f"SSO {slug[-1].upper()} Inc")
        add_user(slug=slug, email=f"admin@{slug.replace('_', '-')}.test", password=PASSWORD, role="admin")
        add_user(slug=slug, email=f"member@{slug.replace('_', '-')}.test", password=PASSWORD, role="member")
    return SLUGS


@pytest.fixture(scope="session")
def idp(live_server_url: LiveServer, sso_tenants) -> Iterator[IdentityServer]:
    clients = [
        {
            "client_id": client_id(slug),
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [live_server_url.tenant_url(slug, "sso/callback/")],
            "backchannel_logout_uri": live_server_url.tenant_url(slug, "sso/backchannel-logout/"),
        }
        for slug in SLUGS
    ]
    server = start_idp(clients)
    try:
        yield server
    finally:
        server.close()


def add_idp(idp: IdentityServer, slug: str, **options) -> str:
    """An identity provider in ``slug`` for the test IdP (discovered from its issuer); returns its key."""
    from identity.services import add_provider

    key = options.pop("key", None) or f"idp-{uuid.uuid4().hex[:8]}"
    options.setdefault("name", "Test IdP")
    with schema_context(slug):
        add_provider(key=key, issuer=idp.issuer, client_id=client_id(slug), client_secret=CLIENT_SECRET, **options)
    return key


def new_account() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


@dataclass
class SsoBrowser:
    """A browser (cookie jar) at the platform and the identity provider, both on loopback."""

    live: LiveServer
    slug: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False, timeout=20))

    def url(self, path: str) -> str:
        return self.live.tenant_url(self.slug, path)

    def as_account(self, account: str) -> SsoBrowser:
        """Who signs in at the identity provider (its headless interaction reads this cookie)."""
        self.http.cookies.set("test_account", account)
        return self

    def start(self, key: str, next_url: str = "") -> httpx.Response:
        """The login page's "Sign in with ..." button: its form, posted as a browser would."""
        page = self.http.get(self.url("login/") + (f"?next={next_url}" if next_url else ""))
        assert page.status_code == 200, page.text[:300]
        form = hidden_inputs(page.text)
        form["next"] = next_url
        return self.http.post(self.url(f"sso/{key}/start/"), data=form)

    def to_callback(self, key: str, next_url: str = "") -> str:
        """Start a sign-in and walk the provider's redirects up to the platform's callback URL (not
        fetched): returns that URL."""
        response = self.start(key, next_url)
        assert response.status_code == 302, response.text[:300]
        location = response.headers["location"]
        callback = self.url("sso/callback/")
        for _ in range(10):
            if location.startswith(callback):
                return location
            response = self.http.get(location)
            assert response.is_redirect, (response.status_code, response.text[:300])
            location = urljoin(location, response.headers["location"])
        raise AssertionError("the identity provider never sent the browser back")

    def sign_in(self, key: str, next_url: str = "") -> httpx.Response:
        """A whole sign-in; returns the callback's answer."""
        return self.http.get(self.to_callback(key, next_url))

    def signed_in(self) -> bool:
        response = self.http.get(self.url("account/"))
        return response.status_code == 200


@pytest.fixture
def browser(live: LiveServer, sso_tenants):
    def make(slug: str = "sso_a", account: str | None = None) -> SsoBrowser:
        b = SsoBrowser(live, slug)
        return b.as_account(account) if account else b

    return make
