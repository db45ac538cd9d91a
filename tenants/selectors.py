from __future__ import annotations

from django.db import connection

from tenants.models import Domain, Membership, Tenant


def tenant_by_slug(slug: str) -> Tenant | None:
    return Tenant.objects.filter(schema_name=slug).first()


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
