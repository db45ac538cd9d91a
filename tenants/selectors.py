"""Reads on tenants, domains and memberships."""

from __future__ import annotations

from django.db import connection

from tenants.errors import TenantServiceError
from tenants.models import Membership, Tenant
from tenants.statements import TENANT_BY_HOST, TENANT_BY_SLUG, TENANT_FIELDS


def _one_tenant(sql: str, value: str) -> Tenant | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return Tenant.from_db(connection.alias, TENANT_FIELDS, row) if row else None


def tenant_by_slug(slug: str) -> Tenant | None:
    return _one_tenant(TENANT_BY_SLUG, slug)


def tenant_by_host(host: str) -> Tenant | None:
    return _one_tenant(TENANT_BY_HOST, host)


def get_tenant(slug: str) -> Tenant:
    """The tenant named ``slug`` (active or not); ``TenantServiceError("unknown_tenant")`` if none."""
    tenant = Tenant.objects.filter(schema_name=slug).first()
    if tenant is None:
        raise TenantServiceError("unknown_tenant", f"no tenant {slug!r}")
    return tenant


def active_membership(user_id: int, tenant_id: int) -> Membership | None:
    """The user's membership of the tenant if it counts (``Membership.objects.active()``)."""
    return (
        Membership.objects.active().filter(user_id=user_id, tenant_id=tenant_id).only("id", "role", "is_active").first()
    )
