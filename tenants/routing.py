"""Entering a tenant for the span of one request: schema, URLconf and script prefix together."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import DEFERRED
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse
from django.urls import get_script_prefix, set_script_prefix, set_urlconf

from tenants.models import Tenant
from tenants.selectors import tenant_by_slug

PREFIX = f"/{settings.TENANT_PATH_PREFIX}/"


class TenantIdentityCache:
    """slug -> tenant pk, least recently used first out, at most ``size`` entries (bounded whatever the
    number of tenants). Holds identity only: whether a tenant is active, its name or anything else that
    can change is read fresh by the request that uses it (``confirm_tenant``). Hand-written because
    ``functools.lru_cache`` can neither be filled with a value looked up elsewhere (routing's own miss
    path) nor drop one key; a dependency (cachetools) for these lines was not worth it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()  # gthread workers share the process

    def get(self, slug: str) -> int | None:
        with self._lock:
            pk = self._items.get(slug)
            if pk is not None:
                self._items.move_to_end(slug)
            return pk

    def put(self, slug: str, pk: int) -> None:
        with self._lock:
            self._items[slug] = pk
            self._items.move_to_end(slug)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def discard(self, slug: str) -> None:
        with self._lock:
            self._items.pop(slug, None)

    def __len__(self) -> int:
        return len(self._items)


identities = TenantIdentityCache(settings.TENANT_IDENTITY_CACHE_SIZE)

# Paths inside a tenant (``/mcp``) whose view confirms the tenant itself, folding the check into a
# statement it runs anyway; registered by the app that owns the view (``mcp_tools.apps``), so this
# layer names no path of the layers above it.
confirmed_by_view: set[str] = set()


_ALL_TENANT_FIELDS = [f.attname for f in Tenant._meta.concrete_fields]
_ID_AT, _SCHEMA_NAME_AT = _ALL_TENANT_FIELDS.index("id"), _ALL_TENANT_FIELDS.index("schema_name")


def provisional_tenant(slug: str) -> Tenant | None:
    """For the paths in ``confirmed_by_view``: the tenant's identity from the cache, no query
    (None when not cached). Only ``id`` and ``schema_name`` are loaded: reading any other field (say
    ``is_active``) before ``confirm_tenant`` loads it from the database, never from a stale copy."""
    pk = identities.get(slug)
    if pk is None:
        return None
    # a value for every field, the others DEFERRED: ``from_db`` then skips matching names to fields
    values = [DEFERRED] * len(_ALL_TENANT_FIELDS)
    values[_ID_AT], values[_SCHEMA_NAME_AT] = pk, slug
    return Tenant.from_db(DEFAULT_DB_ALIAS, _ALL_TENANT_FIELDS, values)


def tenant_unavailable(request: HttpRequest, tenant: Tenant) -> JsonResponse:
    """A deactivated tenant is never served: every path under it gets the same classified refusal."""
    return JsonResponse(
        {
            "error": "tenant_inactive",
            "error_description": f"tenant {tenant.slug!r} is deactivated",
            "class": "TENANT_INACTIVE",
            "retryable": False,
        },
        status=403,
    )


def confirm_tenant(request: HttpRequest, fresh: Tenant | None) -> HttpResponse | None:
    """Finish routing for a request routed with ``provisional_tenant``, given the tenant row as read
    *now* (by the view's own statement, e.g. ``mcp_tools.auth``, or by ``confirm_tenant_now``): the
    same refusals routing gives (404 for a tenant gone, 403 ``TENANT_INACTIVE``), else the fresh row
    replaces the provisional one on the request and the connection. None: carry on."""
    slug = request.tenant.schema_name
    request.tenant_confirmed = True  # checked now, whatever the outcome
    if fresh is None:
        identities.discard(slug)
        return HttpResponseNotFound(b"unknown tenant", content_type="text/plain")
    identities.put(slug, fresh.pk)  # the same pk, unless the tenant was deleted and created again
    request.tenant = fresh
    connection.tenant = fresh  # the schema name is the same: no SET search_path
    if not fresh.is_active:
        return tenant_unavailable(request, fresh)
    return None


def confirm_tenant_now(request: HttpRequest) -> HttpResponse | None:
    """``confirm_tenant`` with its own query, for answers that have no statement to fold it into. A
    request routed the ordinary way is already confirmed: nothing to do."""
    if getattr(request, "tenant_confirmed", True):
        return None
    return confirm_tenant(request, tenant_by_slug(request.tenant.schema_name))


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
