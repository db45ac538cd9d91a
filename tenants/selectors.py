from __future__ import annotations

from django.db import connection

from tenants.models import Domain, Membership, Tenant

_TENANT_FIELDS = [f.attname for f in Tenant._meta.concrete_fields]
_TENANT_BY_SLUG = f"SELECT {', '.join(_TENANT_FIELDS)} FROM public.{Tenant._meta.db_table} WHERE schema_name = %s"  # noqa: S608


def tenant_by_slug(slug: str) -> Tenant | None:
    """Runs on every tenant request. Plain SQL on the schema-qualified table: it needs no particular
    search_path (so routing does not have to switch the connection to public first) and skips the
    ORM's query compilation."""
    with connection.cursor() as cursor:
        cursor.execute(_TENANT_BY_SLUG, [slug])
        row = cursor.fetchone()
    return Tenant.from_db(connection.alias, _TENANT_FIELDS, row) if row else None


def tenant_by_host(host: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    return domain.tenant if domain else None


def active_membership(user_id: int, tenant_id: int) -> Membership | None:
    return (
        Membership.objects.filter(user_id=user_id, tenant_id=tenant_id, is_active=True, user__is_active=True)
        .only("id", "role", "is_active")
        .first()
    )


def current_tenant() -> Tenant | None:
    tenant = getattr(connection, "tenant", None)
    return tenant if isinstance(tenant, Tenant) else None
