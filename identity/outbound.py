"""Outbound HTTP to a tenant's identity provider (discovery, JWKS, token endpoint), SSRF-safe.

The same rules as the connectors' outbound calls (``connectors.http``), from ``egress.rules``: https
only (loopback http in development only), every resolved address public (loopback too in
development), the connection made to the address that was checked (no second DNS lookup: the URL's
host is replaced by the checked address, TLS still verifies the name through SNI and ``Host`` keeps
it), no redirects, a time budget and a size cap.

It is an ``httpx2`` transport because authlib's OAuth 2.0 client (``authlib.integrations.httpx_client``,
on ``httpx2`` as authlib prefers it) takes one: the token request authlib builds and sends goes
through the same rules as the fetches here. ``connectors.http`` sits in a layer above this one, so
its urllib3 pool cannot be reused here; the rule is shared through ``egress``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx2
from django.conf import settings

from egress import rules
from identity.errors import IdentityError


def loopback_allowed() -> bool:
    return bool(settings.IDENTITY_ALLOW_LOOPBACK_HTTP) and not settings.PRODUCTION


def check_url(url: str) -> None:
    """Refuse an identity provider URL that is not https (or, in development, loopback http)."""
    rules.check_url(url, loopback_ok=loopback_allowed(), error=IdentityError)


def checked_address(host: str, port: int) -> str:
    """The first address of ``host``, after every address it resolves to has passed the rule."""
    return rules.checked_addresses(host, port, loopback_ok=loopback_allowed(), error=IdentityError)[0]


class SafeTransport(httpx2.BaseTransport):
    """Checks each request's URL and address, connects to the checked address, caps the body."""

    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport(retries=0, trust_env=False)
        self._max_bytes = int(settings.IDENTITY_HTTP_MAX_BYTES)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        check_url(str(url))
        host = url.host
        ip = checked_address(host, url.port or (443 if url.scheme == "https" else 80))
        request.url = url.copy_with(host=ip)  # Host header already holds the name
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        response = self._inner.handle_request(request)
        try:
            body = b""
            for chunk in response.iter_bytes():  # decoded: the cap holds for what a decompression yields
                body += chunk
                if len(body) > self._max_bytes:
                    raise IdentityError("too_large", f"{host!r} answered more than the size limit")
        finally:
            response.close()
        dropped = {"content-encoding", "content-length", "transfer-encoding"}  # the body is decoded and whole
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
        return httpx2.Response(response.status_code, headers=headers, content=body, request=request)

    def close(self) -> None:
        self._inner.close()


def client_options() -> dict[str, Any]:
    """httpx2 client options for every call to an identity provider."""
    return {
        "transport": SafeTransport(),
        "timeout": float(settings.IDENTITY_HTTP_TIMEOUT_SECONDS),
        "follow_redirects": False,
        "trust_env": False,
    }


def get_json(url: str) -> Any:
    """GET a JSON document (discovery, JWKS); None when the answer is not a 200 JSON object."""
    check_url(url)
    try:
        with httpx2.Client(**client_options()) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise IdentityError("unreachable", f"could not reach {urlsplit(url).hostname!r}") from exc
    if response.status_code != 200:
        return None
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
