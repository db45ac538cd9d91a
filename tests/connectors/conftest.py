"""Fixtures for the connectors tests: the npm ``oidc-provider`` test server (tests/node_oidc) on a
free loopback port, providers pointing at it, and a browser that walks the connect flow over HTTP."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
import pytest
from django_tenants.utils import schema_context

from tests.conftest import LiveServer
from tests.oauth_flow import Browser, hidden_inputs
from tests.support import node_oidc

CLIENT_ID = "platform-connector"
CLIENT_SECRET = "test-only-oidc-client-secret"  # test-only
SLUGS = ("acme", "globex")
# more clients of the same provider whose access tokens live as long as their name says (the
# refresh-timing tests), each with its own counts at the provider
TTL_CLIENTS = {"platform-connector-30s": 30, "platform-connector-90s": 90, "platform-connector-1h": 3600}
RATE_LIMITED_CLIENT = "platform-connector-429"


@pytest.fixture(autouse=True)
def closed_breakers(request):
    """Every test of these files leaves the provider breakers of the shared tenants closed: they are
    keyed on the test provider's token endpoint and client id, which most tests share."""
    yield
    if "live" not in request.fixturenames:
        return  # no committed rows (rolled back, or no database at all)
    from connectors.models import ProviderBreaker

    for slug in SLUGS:
        with schema_context(slug):
            ProviderBreaker.objects.all().delete()


@dataclass
class OidcServer:
    issuer: str
    process: subprocess.Popen = field(repr=False)

    def stats(self) -> dict:
        return httpx.get(f"{self.issuer}/_test/stats", timeout=10).json()

    def refresh_grants(self) -> int:
        return self.stats()["grants"].get("refresh_token", 0)

    def client_stats(self, client_id: str) -> dict[str, int]:
        """Refreshes, token requests and injected failures of one client, counted at the provider."""
        found = self.stats()["clients"].get(client_id, {})
        return {"refreshes": 0, "token_requests": 0, "failures_injected": 0, **found}

    def account_refreshes(self, account: str) -> int:
        """Refreshes granted for the provider-side account ``account`` (the ``test_account`` cookie)."""
        return self.stats()["accounts"].get(account, 0)

    def fail_next(
        self,
        count: int,
        status: int = 503,
        retry_after: str | None = None,
        path: str = "/token",
        client_id: str | None = None,
    ) -> None:
        params = {"count": count, "status": status, "path": path}
        if retry_after is not None:
            params["retry_after"] = retry_after
        if client_id is not None:
            params["client_id"] = client_id
        assert httpx.post(f"{self.issuer}/_test/fail", params=params, timeout=10).status_code == 204

    def delay_next(self, count: int, ms: int) -> None:
        params = {"count": count, "ms": ms}
        assert httpx.post(f"{self.issuer}/_test/delay", params=params, timeout=10).status_code == 204

    def release(self) -> None:
        """The answers ``delay_next`` is holding back go out now."""
        assert httpx.post(f"{self.issuer}/_test/release", timeout=10).status_code == 204

    def mint(self, count: int, prefix: str, client_id: str = CLIENT_ID) -> list[str]:
        """``count`` refresh tokens of accounts ``prefix-0..``, as completed authorizations would have
        issued them (bulk set-up, no browser): test-only route of tests/node_oidc/server.mjs."""
        params = {"client_id": client_id, "count": count, "prefix": prefix}
        response = httpx.post(f"{self.issuer}/_test/mint", params=params, timeout=60)
        assert response.status_code == 200, response.text
        return [item["refresh_token"] for item in response.json()]

    def revoke_token_only(self, on: bool = True) -> None:
        """RFC 7009 at its minimum: a revoked token takes nothing else along (oidc-provider's own
        revocation revokes every token of the grant)."""
        params = {"token_only": "1" if on else "0"}
        assert httpx.post(f"{self.issuer}/_test/revocation", params=params, timeout=10).status_code == 204

    def issued(self) -> list[dict]:
        """Every token answer the provider gave so far (grant_type, access_token, refresh_token)."""
        return httpx.get(f"{self.issuer}/_test/issued", timeout=10).json()

    def tamper_id_token(self, claims: dict, *, foreign_key: bool = False) -> None:
        """The next token answer's ID token with ``claims`` changed (None removes one), re-signed with the
        provider's key, or with a key it does not publish."""
        params = {"claims": json.dumps(claims), "foreign_key": "1" if foreign_key else "0"}
        assert httpx.post(f"{self.issuer}/_test/tamper_id_token", params=params, timeout=10).status_code == 204

    def introspect(self, token: str) -> dict:
        response = httpx.post(
            f"{self.issuer}/token/introspection", data={"token": token}, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def refresh_directly(self, refresh_token: str) -> httpx.Response:
        """Use a refresh token at the provider behind the platform's back (a lost response)."""
        return httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=10,
        )


@contextmanager
def _oidc_server(live: LiveServer) -> Iterator[OidcServer]:
    redirect_uris = [live.tenant_url(slug, "connections/callback/") for slug in SLUGS]
    ttls = {CLIENT_ID: None, RATE_LIMITED_CLIENT: None, **TTL_CLIENTS}
    clients = [
        {
            "client_id": client_id,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": "client_secret_basic",
            **({"access_ttl": ttl} if ttl else {}),
        }
        for client_id, ttl in ttls.items()
    ]
    issuer, process = node_oidc.start("server.mjs", clients, who="connectors")
    server = OidcServer(issuer, process)
    try:
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def oidc(live_server_url: LiveServer) -> Iterator[OidcServer]:
    with _oidc_server(live_server_url) as server:
        yield server


@pytest.fixture(scope="session")
def other_oidc(live_server_url: LiveServer) -> Iterator[OidcServer]:
    """A second, independent provider (another origin): where an edited provider's endpoints may point."""
    with _oidc_server(live_server_url) as server:
        yield server


def add_oidc_provider(
    oidc: OidcServer, slug: str = "acme", *, key: str | None = None, client_id: str = CLIENT_ID
) -> str:
    """A provider in ``slug`` pointing at the test server (discovered from its issuer) as
    ``client_id``; returns its key."""
    from connectors.services import add_provider

    key = key or f"oidc-{uuid.uuid4().hex[:8]}"
    with schema_context(slug):
        add_provider(
            key=key,
            client_id=client_id,
            client_secret=CLIENT_SECRET,
            issuer=oidc.issuer,
            scopes=["openid", "offline_access", "email", "profile"],
            display_name="Test OIDC",
        )
        from connectors.models import Provider

        # the test server drops offline_access without prompt=consent (OpenID Connect Core 11)
        Provider.objects.filter(key=key).update(extra_authorize_params={"prompt": "consent"})
    return key


@dataclass
class ConnectBrowser:
    """A signed-in member's browser that walks connect -> provider -> callback over real HTTP."""

    live: LiveServer
    oidc: OidcServer
    slug: str = "acme"
    email: str = "member@acme.test"
    browser: Browser = field(init=False)

    def __post_init__(self) -> None:
        self.browser = Browser(self.live.tenant(self.slug), self.email)
        self.browser.login()

    @property
    def http(self) -> httpx.Client:
        return self.browser.http

    def url(self, path: str) -> str:
        return self.live.tenant_url(self.slug, path)

    def steer(self, **cookies: str) -> None:
        """Cookies the test provider's headless interaction reads (test_account, test_deny, ...)."""
        for name, value in cookies.items():
            self.http.cookies.set(name, value, domain="127.0.0.1")

    def start(self, key: str) -> str:
        page = self.http.get(self.url(f"connections/{key}/connect/"))
        assert page.status_code == 200, page.text[:300]
        token = hidden_inputs(page.text)["csrfmiddlewaretoken"]
        response = self.http.post(
            self.url(f"connections/{key}/connect/"),
            data={"csrfmiddlewaretoken": token},
            headers={"Referer": self.url(f"connections/{key}/connect/")},
        )
        assert response.status_code == 302, response.text[:300]
        return response.headers["location"]

    def through_provider(self, authorize_url: str) -> str:
        """Follow the provider's redirects until it sends the browser back to the platform."""
        url = authorize_url
        for _ in range(10):
            if url.startswith(self.live.url):
                return url
            response = self.http.get(url)
            assert response.is_redirect, (response.status_code, response.text[:300])
            url = urljoin(url, response.headers["location"])
        raise AssertionError("the provider never redirected back")

    def connect(self, key: str) -> httpx.Response:
        callback = self.through_provider(self.start(key))
        return self.http.get(callback)


def provider_form(provider, **changes) -> dict:
    """The tenant admin's provider form as it would be posted for ``provider``, with ``changes``."""
    data = {
        "key": provider.key,
        "display_name": provider.display_name,
        "issuer": provider.issuer,
        "authorization_endpoint": provider.authorization_endpoint,
        "token_endpoint": provider.token_endpoint,
        "revocation_endpoint": provider.revocation_endpoint,
        "userinfo_endpoint": provider.userinfo_endpoint,
        "client_id": provider.client_id,
        "client_secret": "",
        "default_scopes": json.dumps(provider.default_scopes),
        "scope_separator": provider.scope_separator,
        "token_endpoint_auth_method": provider.token_endpoint_auth_method,
        "pkce": "on" if provider.pkce else "",
        "extra_authorize_params": json.dumps(provider.extra_authorize_params),
        "account_id_claim": provider.account_id_claim,
        "mcp_endpoint": provider.mcp_endpoint,
        "api_base_url": provider.api_base_url,
    }
    data.update(changes)
    return data


def account_of(key: str, email: str = "member@acme.test", slug: str = "acme"):
    """The user's account at provider ``key`` and its credential (None when there is none)."""
    from connectors.models import ConnectedAccount, Credential

    with schema_context(slug):
        account = ConnectedAccount.objects.filter(provider__key=key, user__email=email).first()
        credential = Credential.objects.filter(account=account).first() if account else None
    return account, credential
