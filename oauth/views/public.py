"""The host-root, path-inserted well-known forms (RFC 8414 §3.1, RFC 9728 §3.1) for path-mode
tenants: ``/.well-known/<doc>/t/<slug>[/mcp|/api]``. They run the tenant's own view inside the tenant."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from oauth.views.metadata import TenantAPIResourceMetadataView, TenantResourceMetadataView, TenantServerMetadataView
from tenants.routing import inside_tenant, tenant_path_prefix, tenant_unavailable
from tenants.selectors import tenant_by_slug

_server_metadata = TenantServerMetadataView.as_view()
_resource_metadata = TenantResourceMetadataView.as_view()
_api_resource_metadata = TenantAPIResourceMetadataView.as_view()


def _in_tenant(view, request: HttpRequest, slug: str) -> HttpResponse:
    tenant = tenant_by_slug(slug)
    if tenant is None:
        return JsonResponse({"error": "not_found", "error_description": "unknown tenant"}, status=404)
    if not tenant.is_active:
        return tenant_unavailable(request, tenant)
    with inside_tenant(request, tenant, tenant_path_prefix(slug)):
        return view(request)


def server_metadata(request: HttpRequest, slug: str) -> HttpResponse:
    return _in_tenant(_server_metadata, request, slug)


def resource_metadata(request: HttpRequest, slug: str) -> HttpResponse:
    return _in_tenant(_resource_metadata, request, slug)


def api_resource_metadata(request: HttpRequest, slug: str) -> HttpResponse:
    return _in_tenant(_api_resource_metadata, request, slug)
