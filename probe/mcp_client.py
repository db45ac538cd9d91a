"""The official ``mcp`` client, authorized through its own OAuthClientProvider, with a headless
consent handler that logs in and answers the consent page over real HTTP. Used by the test suite
(``tests.mcp_client`` re-exports it) and by ``manage.py auth_lifecycle_test``."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from probe.oauth_flow import REDIRECT_URI, Browser, query_params


@dataclass
class MemoryStorage:
    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class HeadlessConsent:
    """Plays the user: receives the authorization URL, signs in, allows, captures the redirect."""

    browser: Browser
    authorize_urls: list[str] = field(default_factory=list)
    _result: AuthorizationCodeResult | None = None

    async def redirect_handler(self, url: str) -> None:
        self.authorize_urls.append(url)
        response = await anyio.to_thread.run_sync(self.browser.authorize, url)
        location = response.headers.get("location", "")
        query = query_params(location)
        assert "code" in query, f"no code in {response.status_code} {location} {response.text[:300]}"
        self._result = AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self._result is not None
        result, self._result = self._result, None
        return result


def provider(
    server_url: str,
    browser: Browser,
    storage: MemoryStorage | None = None,
    client_metadata_url: str | None = None,
    scope: str | None = None,
    redirect_uri: str = REDIRECT_URI,
    client_name: str = "mcp SDK test client",
) -> tuple[OAuthClientProvider, HeadlessConsent]:
    consent = HeadlessConsent(browser)
    metadata = OAuthClientMetadata(
        redirect_uris=[redirect_uri],
        client_name=client_name,
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        scope=scope,
    )
    oauth = OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage or MemoryStorage(),
        redirect_handler=consent.redirect_handler,
        callback_handler=consent.callback_handler,
        client_metadata_url=client_metadata_url,
    )
    return oauth, consent


@asynccontextmanager
async def connect(server_url: str, auth: httpx2.Auth | None = None, mode: str = "auto"):
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        Client(streamable_http_client(server_url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client
