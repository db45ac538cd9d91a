"""The tenant's OAuth identity URLs, right in both routing modes.

Path mode (host ``H``): issuer ``H/t/<slug>``, MCP resource ``H/t/<slug>/mcp``, resource metadata at
``H/.well-known/oauth-protected-resource/t/<slug>/mcp``. On a tenant domain ``D``: issuer ``D``,
resource ``D/mcp``, metadata at ``D/.well-known/oauth-protected-resource/mcp``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest

from tenants.routing import tenant_base_url

MCP_PATH = "/mcp"


def issuer(request: HttpRequest) -> str:
    return tenant_base_url(request)


def mcp_resource(request: HttpRequest) -> str:
    return tenant_base_url(request) + MCP_PATH


def _path_inserted(request: HttpRequest, well_known: str, suffix: str) -> str:
    parts = urlsplit(tenant_base_url(request))
    return f"{parts.scheme}://{parts.netloc}/.well-known/{well_known}{parts.path}{suffix}"


def resource_metadata_url(request: HttpRequest) -> str:
    return _path_inserted(request, "oauth-protected-resource", MCP_PATH)


def authorization_server_metadata_url(request: HttpRequest) -> str:
    return _path_inserted(request, "oauth-authorization-server", "")
