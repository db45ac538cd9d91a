"""The audit trail's retention job, fanned out per active tenant. Thin: calls the service."""

from __future__ import annotations

from celery import shared_task

from jobs.fanout import fan_out, in_active_tenant
from observability.services import purge_expired_events


@shared_task(name="observability.purge_auth_events_in_tenant")
def purge_auth_events_in_tenant(slug: str) -> dict[str, int]:
    return {"purged": in_active_tenant(slug, purge_expired_events, default=0)}


@shared_task(name="observability.purge_auth_events_everywhere")
def purge_auth_events_everywhere() -> int:
    return fan_out(purge_auth_events_in_tenant)
