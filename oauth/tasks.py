"""Celery jobs of the authorization server. Thin: each calls a service inside one tenant."""

from __future__ import annotations

from celery import shared_task
from django_tenants.utils import tenant_context

from oauth.services import drop_expired_refresh_state, expire_unused_clients
from tenants.models import Tenant


@shared_task(name="oauth.expire_unused_clients_in_tenant")
def expire_unused_clients_in_tenant(slug: str) -> int:
    tenant = Tenant.objects.filter(schema_name=slug, is_active=True).first()
    if tenant is None:
        return 0
    with tenant_context(tenant):
        drop_expired_refresh_state()  # the same periodic sweep of the tenant's OAuth state
        return expire_unused_clients()


@shared_task(name="oauth.expire_unused_clients")
def expire_unused_clients_everywhere() -> int:
    """Fan out: one task per active tenant, so one tenant's failure does not stop the others."""
    slugs = list(Tenant.objects.filter(is_active=True).values_list("schema_name", flat=True))
    for slug in slugs:
        expire_unused_clients_in_tenant.delay(slug)
    return len(slugs)
