"""Entering a tenant for the span of one request: schema, URLconf and script prefix together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.urls import get_script_prefix, set_script_prefix, set_urlconf

from tenants.models import Tenant

PREFIX = f"/{settings.TENANT_PATH_PREFIX}/"


def split_tenant_path(path: str) -> tuple[str, str] | None:
    """``/t/acme/mcp`` -> ``("acme", "/mcp")``; ``/t/acme`` -> ``("acme", "")``; otherwise None."""
    if not path.startswith(PREFIX):
        return None
    slug, sep, rest = path[len(PREFIX) :].partition("/")
    return slug, sep + rest


def tenant_path_prefix(slug: str) -> str:
    return f"{PREFIX}{slug}"


@contextmanager
def inside_tenant(request: HttpRequest, tenant: Tenant, script_prefix: str | None) -> Iterator[None]:
    """Run with ``tenant``'s schema, the tenant URLconf, and (path mode) ``/t/<slug>/`` as script prefix,
    so ``reverse()`` and ``build_absolute_uri()`` produce the tenant's own URLs in either routing mode."""
    previous_prefix = get_script_prefix()
    if script_prefix is not None:
        set_script_prefix(script_prefix.rstrip("/") + "/")
    request.tenant = tenant
    request.urlconf = settings.ROOT_URLCONF
    set_urlconf(settings.ROOT_URLCONF)
    use_schema(tenant)
    try:
        yield
    finally:
        set_script_prefix(previous_prefix)
        set_urlconf(None)


def use_schema(tenant: Tenant | None) -> None:
    """Point the connection at ``tenant`` (None: public). Every request calls this before anything
    else touches the database, so the schema never carries over from one request to the next; when the
    connection is already there, the ``SET search_path`` round trip is skipped (TENANT_LIMIT_SET_CALLS)."""
    current = getattr(connection, "tenant", None)
    target = tenant.schema_name if tenant is not None else "public"
    if (
        connection.schema_name == target
        and connection.search_path_set_schemas
        and (tenant is None or getattr(current, "pk", None) == tenant.pk)
    ):
        if tenant is not None:
            connection.tenant = tenant  # the fresh row (is_active, name) for this request
        return
    if tenant is None:
        connection.set_schema_to_public()
    else:
        connection.set_tenant(tenant)


def tenant_base_url(request: HttpRequest) -> str:
    """``http://H/t/acme`` in path mode, ``https://acme.example`` on a tenant domain."""
    return request.build_absolute_uri(get_script_prefix()).rstrip("/")
