"""The MCP endpoint's periodic job: purge expired idempotency records, one task per active tenant."""

from __future__ import annotations

from celery import shared_task

from jobs.fanout import fan_out, in_active_tenant
from mcp_tools.idempotency import purge_expired


@shared_task(name="mcp_tools.purge_idempotency_records_in_tenant")
def purge_idempotency_records_in_tenant(slug: str) -> int:
    return in_active_tenant(slug, purge_expired, default=0)


@shared_task(name="mcp_tools.purge_idempotency_records_everywhere")
def purge_idempotency_records_everywhere() -> int:
    """Dispatcher (the beat row in ``mcp_tools.schedules``)."""
    return fan_out(purge_idempotency_records_in_tenant)
