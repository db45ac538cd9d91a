"""Periodic jobs run per tenant: a dispatcher queues one task per active tenant, so one tenant's
failure or slowness does not hold up the others, and each task runs inside its tenant's schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task
from django_tenants.utils import tenant_context

from tenants.models import Tenant

T = TypeVar("T")


def fan_out(task: Task, *args: Any) -> int:
    """Queue ``task(slug, *args)`` for every active tenant; return how many were queued."""
    slugs = list(Tenant.objects.filter(is_active=True).values_list("schema_name", flat=True))
    for slug in slugs:
        task.delay(slug, *args)
    return len(slugs)


def in_active_tenant(slug: str, job: Callable[[], T], *, default: T) -> T:
    """Run ``job`` inside the tenant's schema, or return ``default`` if the tenant is gone or inactive
    by the time the task runs."""
    tenant = Tenant.objects.filter(schema_name=slug, is_active=True).first()
    if tenant is None:
        return default
    with tenant_context(tenant):
        return job()
