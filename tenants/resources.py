"""The tenant's protected resources (RFC 8707 / RFC 9728) and its canonical base URL.

Two resources per tenant, each its own audience: the MCP endpoint (``H/t/<slug>/mcp``) and the REST
API (``H/t/<slug>/api``, every view under ``/api/``). Their metadata documents sit at the RFC 9728
path-inserted forms, ``H/.well-known/oauth-protected-resource/t/<slug>/mcp`` and ``.../t/<slug>/api``
(on a tenant domain ``D``: ``D/.well-known/oauth-protected-resource/mcp`` and ``.../api``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

from tenants.models import Domain
from tenants.routing import tenant_base_url, tenant_path_prefix

MCP_PATH = "/mcp"
API_PATH = "/api"


def api_resource(request: HttpRequest) -> str:
    return tenant_base_url(request) + API_PATH


def path_inserted(request: HttpRequest, well_known: str, suffix: str) -> str:
    """RFC 8414 §3.1 / RFC 9728 §3.1: the well-known segment inserted between host and path."""
    return well_known_url(tenant_base_url(request) + suffix, well_known)


def well_known_url(url: str, well_known: str) -> str:
    """``path_inserted`` for a URL already known (a resource, an issuer), with no request at hand."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/{well_known}{parts.path}"


def api_resource_metadata_url(request: HttpRequest) -> str:
    return path_inserted(request, "oauth-protected-resource", API_PATH)


def canonical_base_url(*, tenant_id: int, slug: str) -> str:
    """The tenant's base URL without a request (for links in tool results, mail, jobs): its primary
    domain on the platform's scheme and port when it has one, else ``PUBLIC_BASE_URL/t/<slug>``."""
    public = urlsplit(settings.PUBLIC_BASE_URL)
    domain = Domain.objects.filter(tenant_id=tenant_id, is_primary=True).values_list("domain", flat=True).first()
    if domain:
        port = f":{public.port}" if public.port else ""
        return f"{public.scheme}://{domain}{port}"
    return settings.PUBLIC_BASE_URL + tenant_path_prefix(slug)
