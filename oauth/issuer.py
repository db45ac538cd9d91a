"""The tenant's OAuth identity URLs, right in both routing modes.

Path mode (host ``H``): issuer ``H/t/<slug>``, MCP resource ``H/t/<slug>/mcp``, resource metadata at
``H/.well-known/oauth-protected-resource/t/<slug>/mcp``. On a tenant domain ``D``: issuer ``D``,
resource ``D/mcp``, metadata at ``D/.well-known/oauth-protected-resource/mcp``. The REST API is a
second resource, ``H/t/<slug>/api`` (``tenants.resources``), with its metadata at ``.../t/<slug>/api``.
"""

from __future__ import annotations

from django.http import HttpRequest

from tenants.resources import API_PATH, MCP_PATH, api_resource, api_resource_metadata_url, path_inserted, well_known_url
from tenants.routing import tenant_base_url

__all__ = [
    "API_PATH", "MCP_PATH", "allowed_resources", "api_resource", "api_resource_metadata_url",
    "authorization_server_metadata_url", "issuer", "mcp_resource", "resource_metadata_for",
    "resource_metadata_url",
]  # fmt: skip


def issuer(request: HttpRequest) -> str:
    return tenant_base_url(request)


def mcp_resource(request: HttpRequest) -> str:
    return tenant_base_url(request) + MCP_PATH


def allowed_resources(request: HttpRequest) -> tuple[str, ...]:
    """The RFC 8707 resources this tenant issues tokens for; the first is the default."""
    return (mcp_resource(request), api_resource(request))


def resource_metadata_url(request: HttpRequest) -> str:
    return path_inserted(request, "oauth-protected-resource", MCP_PATH)


def resource_metadata_for(resource: str) -> str:
    """The metadata document's URL of ``resource`` (``mcp_resource``'s value), without the request."""
    return well_known_url(resource, "oauth-protected-resource")


def authorization_server_metadata_url(request: HttpRequest) -> str:
    return path_inserted(request, "oauth-authorization-server", "")
