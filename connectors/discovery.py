"""RFC 8414 / OpenID Connect discovery: an issuer URL to the provider's endpoints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from connectors import http
from connectors.errors import ConnectorError


def metadata_urls(issuer: str) -> list[str]:
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    urls = [
        f"{origin}/.well-known/oauth-authorization-server{path}",  # RFC 8414, path-inserted
        f"{origin}{path}/.well-known/openid-configuration",  # OpenID Connect Discovery
    ]
    if path:
        urls.append(f"{origin}/.well-known/openid-configuration{path}")
    return urls


def discover(issuer: str) -> dict[str, Any]:
    """Fetch the first metadata document whose ``issuer`` is exactly ``issuer`` (RFC 8414 3.3)."""
    issuer = issuer.rstrip("/")
    try:
        http.check_url(issuer)
    except http.OutboundError as exc:
        raise ConnectorError(exc.code, str(exc)) from exc
    for url in metadata_urls(issuer):
        try:
            response = http.request("GET", url)
        except http.OutboundError as exc:
            if exc.code in {"insecure_url", "blocked_address", "invalid_url"}:
                raise ConnectorError(exc.code, str(exc)) from exc
            continue
        document = response.json() if response.status == 200 else None
        if not isinstance(document, dict):
            continue
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise ConnectorError("issuer_mismatch", f"the metadata at {url} names another issuer")
        return document
    raise ConnectorError("discovery_failed", f"no authorization server metadata found for {issuer}")


def provider_fields(document: dict[str, Any]) -> dict[str, Any]:
    """Provider fields from a metadata document (endpoints, auth method, PKCE support, the mix-up
    defence and the ID-token keys)."""
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = next(
        (m for m in ("client_secret_basic", "client_secret_post", "none") if m in methods), "client_secret_basic"
    )
    supported = document.get("scopes_supported") or []
    return {
        "issuer": document["issuer"].rstrip("/"),
        "authorization_endpoint": document.get("authorization_endpoint", ""),
        "token_endpoint": document.get("token_endpoint", ""),
        "revocation_endpoint": document.get("revocation_endpoint", ""),
        "userinfo_endpoint": document.get("userinfo_endpoint", ""),
        "token_endpoint_auth_method": auth_method,
        "pkce": "S256" in (document.get("code_challenge_methods_supported") or []),
        "default_scopes": [s for s in ("openid", "offline_access") if s in supported],
        "jwks_uri": document.get("jwks_uri", "") if isinstance(document.get("jwks_uri"), str) else "",
        # RFC 9207: then every authorization response must carry iss (connectors.services.complete_connect)
        "authorization_response_iss_parameter_supported": document.get("authorization_response_iss_parameter_supported")
        is True,
    }
