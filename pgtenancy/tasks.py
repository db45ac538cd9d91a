"""Celery tasks of the PostgreSQL machinery."""

from __future__ import annotations

from celery import shared_task

from pgtenancy.spares import replenish


# the name it had in the tenants app: tasks already queued or scheduled under it still resolve
@shared_task(name="tenants.replenish_spares", acks_late=True)
def replenish_spares() -> int:
    """Copy spare tenant schemas until the pool is full again (``pgtenancy.spares``); idempotent."""
    return replenish()
