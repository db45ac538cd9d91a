"""Reads on tenants, domains and memberships."""

from __future__ import annotations

from django.db import connection

from tenants.errors import TenantServiceError
from tenants.models import Domain, Membership, Tenant

_TENANT_FIELDS = [f.attname for f in Tenant._meta.concrete_fields]
# Routing runs these on every request: plain SQL on the schema-qualified tables needs no particular
# search_path (routing does not switch the connection to public first) and skips ORM compilation.
_TENANT_BY_SLUG = f"SELECT {', '.join(_TENANT_FIELDS)} FROM public.{Tenant._meta.db_table} WHERE schema_name = %s"  # noqa: S608
_TENANT_BY_HOST = (
    f"SELECT {', '.join('t.' + f for f in _TENANT_FIELDS)} FROM public.{Tenant._meta.db_table} t "  # noqa: S608
    f"JOIN public.{Domain._meta.db_table} d ON d.tenant_id = t.id WHERE d.domain = %s"
)


def _one_tenant(sql: str, value: str) -> Tenant | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return Tenant.from_db(connection.alias, _TENANT_FIELDS, row) if row else None


def tenant_by_slug(slug: str) -> Tenant | None:
    return _one_tenant(_TENANT_BY_SLUG, slug)


def tenant_by_host(host: str) -> Tenant | None:
    return _one_tenant(_TENANT_BY_HOST, host)


def get_tenant(slug: str) -> Tenant:
    """The tenant named ``slug`` (active or not); ``TenantServiceError("unknown_tenant")`` if none."""
    tenant = Tenant.objects.filter(schema_name=slug).first()
    if tenant is None:
        raise TenantServiceError("unknown_tenant", f"no tenant {slug!r}")
    return tenant


def active_membership(user_id: int, tenant_id: int) -> Membership | None:
    """The user's membership of the tenant if it counts (``Membership.objects.active()``)."""
    return (
        Membership.objects.active()
        .filter(user_id=user_id, tenant_id=tenant_id)
        .only("id", "role", "is_active")
        .first()
    )
