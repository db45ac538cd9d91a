"""Where a provider's endpoints may point, so that nothing a tenant admin types sends members' tokens
or the client secret to a host the provider does not own.

Each endpoint a token or the client secret is sent to (authorization, token, revocation, userinfo, the
provider's MCP endpoint and REST API base) must
- share the origin (scheme, host, port) of the provider's issuer, or of its authorization endpoint
  when it has no issuer (GitHub, HubSpot, Atlassian: the host users see when they connect); or
- be on a host the provider's preset documents (``allowed_hosts`` in ``data/presets.json``: Google's
  token endpoint, Microsoft Graph's userinfo); or
- be exactly the URL the issuer's discovery document names for it, fetched by the platform when the
  provider is saved (never taken from the form).
Anything else only when the platform operator sets ``CONNECTORS_ALLOW_CROSS_ORIGIN_ENDPOINTS``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from connectors import discovery, presets
from connectors.errors import ConnectorError

CHECKED = (
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "userinfo_endpoint",
    "mcp_endpoint",
    "api_base_url",
)
DISCOVERABLE = {"authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint"}
DEFAULT_PORTS = {"https": 443, "http": 80}


class EndpointError(ConnectorError):
    """A refused provider field; ``field`` names it (the admin form shows the error there)."""

    def __init__(self, code: str, message: str, *, field: str) -> None:
        super().__init__(code, message)
        self.field = field


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def _on_preset_host(url: str, hosts: set[str]) -> bool:
    scheme, host, port = origin(url)
    return scheme == "https" and port == 443 and host in hosts


def _same_url(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.rstrip("/") == b.rstrip("/")


def check(values: dict[str, Any], *, preset_name: str = "", document: dict[str, Any] | None = None) -> dict | None:
    """Refuse (``EndpointError``, code ``cross_origin_endpoint``) the first endpoint in ``values`` outside
    the rule. The issuer's discovery document is fetched only when an endpoint needs it (``document``:
    one already fetched); returns the document used, if any."""
    if settings.CONNECTORS_ALLOW_CROSS_ORIGIN_ENDPOINTS:
        return document
    anchor_url = values.get("issuer") or values.get("authorization_endpoint") or ""
    anchor = origin(anchor_url)
    hosts = presets.allowed_hosts(preset_name)
    outside = [
        name
        for name in CHECKED
        if values.get(name) and origin(values[name]) != anchor and not _on_preset_host(values[name], hosts)
    ]
    if not outside:
        return document
    if document is None and values.get("issuer") and any(name in DISCOVERABLE for name in outside):
        try:
            document = discovery.discover(values["issuer"])
        except ConnectorError:
            document = {}
    for name in outside:
        if name in DISCOVERABLE and document and _same_url(document.get(name), values[name]):
            continue
        where = "the issuer's origin" if values.get("issuer") else "the authorization endpoint's origin"
        raise EndpointError(
            "cross_origin_endpoint",
            f"{name} is not on {where} ({anchor[1]}), not named by the issuer's discovery document and not "
            "a host the preset documents; the platform operator can allow it "
            "(CONNECTORS_ALLOW_CROSS_ORIGIN_ENDPOINTS)",
            field=name,
        )
    return document
