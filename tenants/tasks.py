"""Celery tasks of the tenants app."""

from __future__ import annotations

from celery import shared_task

from tenants.spares import replenish


@shared_task(name="tenants.replenish_spares", acks_late=True)
def replenish_spares() -> int:
    """Copy spare tenant schemas until the pool is full again (``tenants.spares``); idempotent."""
    return replenish()
