"""PKCE, dynamic registration, headless login and consent over HTTP (httpx). The mcp package's client
is used for the MCP-level tests; this one lets callers take each step apart."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

REDIRECT_URI = "http://127.0.0.1:9/callback"  # loopback; never contacted (redirects are not followed)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_inputs(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]+>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = value.group(1).replace("&amp;", "&") if value else ""
    return fields


def query_params(url: str) -> dict[str, str]:
    """The query of ``url`` (a redirect's Location, an authorization URL) as a dict of first values."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def submit_login(http: httpx.Client, url: str, username: str, password: str, **fields: str) -> httpx.Response:
    """GET the login form at ``url`` (CSRF cookie and token, hidden fields), then POST the credentials
    with ``fields``, as a browser would. Returns the POST's response (302 when signed in)."""
    form = hidden_inputs(http.get(url).text)
    data = {**form, "username": username, "password": password, **fields}
    return http.post(url, data=data, headers={"Referer": url})


@dataclass
class Tenant:
    base: str  # http://127.0.0.1:PORT/t/acme
    slug: str

    @property
    def mcp(self) -> str:
        return f"{self.base}/mcp"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"


@dataclass
class Client:
    tenant: Tenant
    client_id: str
    client_secret: str | None = None
    redirect_uri: str = REDIRECT_URI


@dataclass
class Browser:
    """A user agent with a cookie jar: logs in and answers the consent page."""

    tenant: Tenant
    email: str
    password: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False, timeout=20))

    def login(self, path: str = "login/", **fields: str) -> None:
        """Sign in on the tenant's login page (or another one under the tenant, e.g. ``admin/login/``)."""
        response = submit_login(self.http, self.tenant.url(path), self.email, self.password, **fields)
        assert response.status_code == 302, response.text[:500]

    def authorize(self, authorize_url: str, *, allow: bool = True) -> httpx.Response:
        """GET the authorization URL; if a consent page comes back, submit it. Returns the final redirect."""
        response = self.http.get(authorize_url)
        if response.status_code == 200 and 'id="authorizationForm"' in response.text:
            form = hidden_inputs(response.text)
            if allow:
                form["allow"] = "Authorize"
            response = self.http.post(authorize_url.split("?")[0], data=form, headers={"Referer": authorize_url})
        return response


def register(tenant: Tenant, *, http: httpx.Client | None = None, **metadata) -> Client:
    """A public native client registered at the tenant (RFC 7591), through ``http`` if given."""
    body = {
        "client_name": "Test MCP client",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "application_type": "native",
        **metadata,
    }
    response = (http.post if http is not None else httpx.post)(tenant.url("register/"), json=body, timeout=20)
    assert response.status_code == 201, response.text
    data = response.json()
    return Client(tenant, data["client_id"], data.get("client_secret"), body["redirect_uris"][0])


def authorize_url(client: Client, *, scope: str, challenge: str, state: str = "st", **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return client.tenant.url("authorize/") + "?" + urlencode(params)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return query_params(response.headers["location"])


def exchange(
    client: Client, code: str, verifier: str, *, http: httpx.Client | None = None, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
        **extra,
    }
    return _token(client, data, http)


def refresh(client: Client, refresh_token: str, *, http: httpx.Client | None = None, **extra: str) -> httpx.Response:
    return _token(client, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}, http)


def _token(client: Client, data: dict[str, str], http: httpx.Client | None) -> httpx.Response:
    """A token request of ``client`` (its secret by HTTP Basic), through ``http`` if given."""
    auth = (client.client_id, client.client_secret) if client.client_secret else None
    post = http.post if http is not None else httpx.post
    return post(client.tenant.url("token/"), data={"client_id": client.client_id, **data}, auth=auth, timeout=20)


def authorization_code(browser: Browser, client: Client, scope: str = "crm.read", **extra: str) -> tuple[str, str]:
    """Authorize ``client`` as the signed-in ``browser`` (consenting if asked): the code and its PKCE
    verifier."""
    verifier, challenge = pkce_pair()
    params = redirect_params(browser.authorize(authorize_url(client, scope=scope, challenge=challenge, **extra)))
    assert "code" in params, params
    return params["code"], verifier


def obtain_tokens(browser: Browser, client: Client, scope: str = "crm.read", **extra: str) -> dict:
    code, verifier = authorization_code(browser, client, scope, **extra)
    response = exchange(client, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()
