"""Celery jobs of the connectors app: proactive refresh and the revocation sweep, fanned out per
active tenant (one task per tenant, started with jitter so tenants do not hit providers in step).
Thin: each calls a service inside one tenant."""

from __future__ import annotations

import random

from celery import shared_task
from django.conf import settings
from django_tenants.utils import tenant_context

from connectors.services import purge_authorization_requests, retry_pending_revocations
from connectors.tokens import refresh_expiring_accounts
from tenants.models import Tenant


def _active_slugs() -> list[str]:
    return list(Tenant.objects.filter(is_active=True).values_list("schema_name", flat=True))


@shared_task(name="connectors.refresh_expiring_in_tenant")
def refresh_expiring_in_tenant(slug: str) -> dict[str, int]:
    tenant = Tenant.objects.filter(schema_name=slug, is_active=True).first()
    if tenant is None:
        return {}
    with tenant_context(tenant):
        return refresh_expiring_accounts(within_seconds=settings.CONNECTORS_PROACTIVE_REFRESH_SECONDS)


@shared_task(name="connectors.refresh_expiring")
def refresh_expiring_everywhere() -> int:
    slugs = _active_slugs()
    for slug in slugs:
        refresh_expiring_in_tenant.apply_async((slug,), countdown=random.uniform(0, 30))  # noqa: S311 (jitter)
    return len(slugs)


@shared_task(name="connectors.sweep_in_tenant")
def sweep_in_tenant(slug: str) -> int:
    tenant = Tenant.objects.filter(schema_name=slug, is_active=True).first()
    if tenant is None:
        return 0
    with tenant_context(tenant):
        purge_authorization_requests()
        return retry_pending_revocations()


@shared_task(name="connectors.sweep")
def sweep_everywhere() -> int:
    slugs = _active_slugs()
    for slug in slugs:
        sweep_in_tenant.delay(slug)
    return len(slugs)
