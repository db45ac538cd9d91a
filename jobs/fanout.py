"""Periodic jobs run per tenant: a dispatcher queues one task per tenant, so one tenant's failure or
slowness does not hold up the others, and each task runs inside its tenant's schema."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task, shared_task
from django_tenants.utils import get_public_schema_name, tenant_context

from jobs.runner import Counts, run_in_tenant
from tenants.models import Tenant

T = TypeVar("T")


def tenant_slugs(*, include_inactive: bool = False) -> list[str]:
    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name())
    if not include_inactive:
        tenants = tenants.filter(is_active=True)
    return list(tenants.values_list("schema_name", flat=True))


def fan_out(task: Task, *args: Any, jitter_seconds: float = 0.0, include_inactive: bool = False) -> int:
    """Queue ``task(slug, *args)`` for every active tenant (every tenant with ``include_inactive``,
    for sweeps that clean up after deactivated ones), each delayed by a random 0..``jitter_seconds``
    so tenants do not hit providers in step; return how many were queued."""
    slugs = tenant_slugs(include_inactive=include_inactive)
    for slug in slugs:
        countdown = random.uniform(0, jitter_seconds) if jitter_seconds else None  # noqa: S311 (jitter)
        task.apply_async((slug, *args), countdown=countdown)
    return len(slugs)


def in_active_tenant(slug: str, job: Callable[[], T], *, default: T) -> T:
    """Run ``job`` inside the tenant's schema, or return ``default`` if the tenant is gone or inactive
    by the time the task runs."""
    tenant = Tenant.objects.filter(schema_name=slug, is_active=True).first()
    if tenant is None:
        return default
    with tenant_context(tenant):
        return job()


def sweep_tasks(job: str, dispatcher: str, work: Callable[[Tenant], Counts]) -> tuple[Task, Task]:
    """The two Celery tasks of a sweep over every tenant (deactivated ones too): ``job`` runs ``work``
    inside one tenant through ``jobs.runner``, ``dispatcher`` (the name beat schedules) queues ``job``
    for each tenant. The names are the tasks' names, so queued tasks and schedules keep finding them."""

    @shared_task(name=job, acks_late=True)
    def in_tenant(slug: str, run_id: str = "") -> Counts:
        return run_in_tenant(job=job, slug=slug, work=work, run_id=run_id, include_inactive=True)

    @shared_task(name=dispatcher, acks_late=True)
    def everywhere() -> int:
        return fan_out(in_tenant, include_inactive=True)

    return in_tenant, everywhere
