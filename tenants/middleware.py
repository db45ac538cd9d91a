"""Tenant routing without per-request URLconf generation.

django-tenants' ``TenantSubfolderMiddleware`` clears Django's URL resolver caches on every request and
builds a prefixed URLconf per tenant; ``bench/routing.py`` measures what that costs. This middleware
instead treats ``/t/<slug>`` like a WSGI script prefix: it moves the prefix from ``path_info`` to
``SCRIPT_NAME`` and ``set_script_prefix``, so one cached tenant URLconf resolves for every tenant and
``reverse()`` still yields ``/t/<slug>/...``. A tenant's own domain selects the same URLconf at the
root. Anything else is the public site.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponsePermanentRedirect, JsonResponse

from tenants.edges import request_problem
from tenants.hosts import check_development_host
from tenants.models import SLUG_RE, Tenant
from tenants.routing import (
    confirm_tenant_now,
    confirmed_by_view,
    identities,
    inside_tenant,
    provisional_tenant,
    split_tenant_path,
    tenant_path_prefix,
    tenant_unavailable,
    use_schema,
)
from tenants.selectors import tenant_by_host, tenant_by_slug


class TenantRoutingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        check_development_host(request)  # DNS rebinding: only our own hosts (no-op in production)
        routed = split_tenant_path(request.path_info)
        tenant: Tenant | None
        script_prefix = None
        provisional = False
        if routed is not None:
            slug, rest = routed
            # only a well-formed slug reaches the database (a NUL would be a DataError there)
            well_formed = SLUG_RE.fullmatch(slug) is not None
            tenant = None
            if well_formed and rest in confirmed_by_view:
                # the view confirms the tenant (active, still there) in a statement it runs anyway
                tenant = provisional_tenant(slug)
                provisional = tenant is not None
            if tenant is None and well_formed:
                tenant = tenant_by_slug(slug)
                if tenant is not None and rest in confirmed_by_view:
                    identities.put(slug, tenant.pk)
            if tenant is None:
                return HttpResponseNotFound(b"unknown tenant", content_type="text/plain")
            if not rest:
                location = request.get_full_path().replace(request.path, request.path + "/", 1)
                return HttpResponsePermanentRedirect(location)
            script_prefix = request.META.get("SCRIPT_NAME", "").rstrip("/") + tenant_path_prefix(slug)
            request.path_info = rest
            request.META["SCRIPT_NAME"] = script_prefix
        else:
            tenant = tenant_by_host(request.get_host().rsplit(":", 1)[0].lower())

        if tenant is None:
            use_schema(None)
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return self.get_response(request)
        if provisional:
            request.tenant_confirmed = False
        elif not tenant.is_active:
            return tenant_unavailable(request, tenant)
        with inside_tenant(request, tenant, script_prefix):
            response = self.get_response(request)
        if provisional and not request.tenant_confirmed:
            # answered before reaching the view (SecurityMiddleware's HTTPS redirect): the tenant check
            # still comes first, as when routing made it, e.g. 403 for a deactivated tenant
            return confirm_tenant_now(request) or response
        return response


class EdgeInputMiddleware:
    """Refuses, with a 400, input that would otherwise fail deep inside a view or the database: NUL
    or unpaired surrogates in query parameters, form fields or Basic credentials, and forms in a
    charset other than UTF-8 (``tenants.edges``). The MCP endpoint answers before it
    (``mcp_tools.middleware``) and validates its JSON body itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = request_problem(request)
        if problem is not None:
            return JsonResponse({"error": "invalid_request", "error_description": problem}, status=400)
        return self.get_response(request)


class TenantSessionCookieMiddleware:
    """One session cookie per tenant (``sessionid_<slug>``), so a browser can be signed in to several
    tenants on one host at once. Sessions live in each tenant's own schema either way; this only keeps
    signing in at one tenant from replacing the cookie of another. Sits just before
    SessionMiddleware and renames the cookie on the way in and out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return self.get_response(request)
        own = f"{self.name}_{tenant.slug}"
        cookies = {k: v for k, v in request.COOKIES.items() if k != self.name}
        if own in cookies:
            cookies[self.name] = cookies.pop(own)
        request.COOKIES = cookies
        response = self.get_response(request)
        morsel = response.cookies.pop(self.name, None)
        if morsel is not None:
            response.cookies[own] = morsel.value
            for attribute, value in morsel.items():
                response.cookies[own][attribute] = value
        return response
