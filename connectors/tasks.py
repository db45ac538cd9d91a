"""Celery jobs of the connectors app, thin over ``connectors.lifecycle``. Dispatchers fan out per
tenant (with jitter); each tenant task carries its tenant's slug, acknowledges late (a worker killed
mid-run gets the task redelivered) and is idempotent. ``jobs.runner`` records each run and logs one
summary line.

- ``connectors.refresh_expiring`` -> ``connectors.refresh_expiring_in_tenant`` (active tenants):
  refresh the accounts whose tokens are due by their own lifetime (``connectors.timing``); when many
  are due, extra ``connectors.refresh_batches_in_tenant`` tasks let other workers claim batches in
  parallel. They carry the run's start, so one run refreshes an account at most once.
- ``connectors.sweep`` -> ``connectors.sweep_in_tenant`` (every tenant, also deactivated ones):
  revoke at the provider and delete the credentials of ended members / deactivated tenants, retry
  failed revocations with backoff, purge old connect attempts. The same work is queued at once as
  ``connectors.sweep_after_event_in_tenant`` when a membership ends or the tenant is deactivated
  (``connectors.receivers``).
- ``connectors.reencrypt`` -> ``connectors.reencrypt_in_tenant``: re-encrypt under the newest key.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from celery import shared_task
from django.conf import settings

from connectors import clock, lifecycle
from connectors.services import SWEEP_AFTER_EVENT, purge_authorization_requests, sweep_provider_leftovers
from jobs.fanout import fan_out, sweep_tasks
from jobs.runner import Counts, run_in_tenant
from tenants.models import Tenant

REFRESH = "connectors.refresh_expiring_in_tenant"
REFRESH_PART = "connectors.refresh_batches_in_tenant"
SWEEP = "connectors.sweep_in_tenant"
REENCRYPT = "connectors.reencrypt_in_tenant"


def _refresh(run_started: datetime) -> Counts:
    return lifecycle.refresh_due_accounts(batch_size=settings.CONNECTORS_REFRESH_BATCH_SIZE, run_started=run_started)


@shared_task(name=REFRESH, acks_late=True)
def refresh_expiring_in_tenant(slug: str, run_id: str = "") -> Counts:
    run_id = run_id or uuid.uuid4().hex
    started = clock.now()

    def work(tenant: Tenant) -> Counts:
        due = lifecycle.due_count()
        helpers = min(
            settings.CONNECTORS_REFRESH_PARALLEL_TASKS, math.ceil(due / settings.CONNECTORS_REFRESH_BATCH_SIZE)
        )
        for _ in range(helpers - 1):  # other workers claim batches beside this one
            refresh_batches_in_tenant.delay(slug, run_id, started.isoformat())
        return _refresh(started)

    return run_in_tenant(job=REFRESH, slug=slug, work=work, run_id=run_id, single=False)


@shared_task(name=REFRESH_PART, acks_late=True)
def refresh_batches_in_tenant(slug: str, run_id: str = "", run_started: str = "") -> Counts:
    started = datetime.fromisoformat(run_started) if run_started else clock.now()
    return run_in_tenant(job=REFRESH, slug=slug, work=lambda _: _refresh(started), run_id=run_id, single=False)


@shared_task(name="connectors.refresh_expiring", acks_late=True)
def refresh_expiring_everywhere() -> int:
    """Every minute (admin-editable): one refresh task per active tenant, started with jitter."""
    return fan_out(refresh_expiring_in_tenant, jitter_seconds=settings.CONNECTORS_REFRESH_JITTER_SECONDS)


def _sweep(tenant: Tenant) -> Counts:
    counts = lifecycle.sweep_upstream(tenant_active=tenant.is_active)
    counts.update(sweep_provider_leftovers())  # retired grants revoked, deleted providers removed
    counts["connect_attempts_purged"] = purge_authorization_requests()
    return counts


sweep_in_tenant, sweep_everywhere = sweep_tasks(SWEEP, "connectors.sweep", _sweep)


@shared_task(name=SWEEP_AFTER_EVENT, acks_late=True)
def sweep_after_event_in_tenant(slug: str, run_id: str = "") -> Counts:
    """The same sweep, queued by ``connectors.receivers`` when a membership ended or the tenant was
    deactivated, and recorded as its own job. It runs even while a periodic sweep of the tenant is
    running (that one may have read the members before the change): the sweep's steps are safe side
    by side (an idempotent UPDATE, revocations claimed with ``SKIP LOCKED`` and a lease)."""
    return run_in_tenant(
        job=SWEEP_AFTER_EVENT, slug=slug, work=_sweep, run_id=run_id, include_inactive=True, single=False
    )


reencrypt_in_tenant, reencrypt_everywhere = sweep_tasks(
    REENCRYPT, "connectors.reencrypt", lambda _: lifecycle.reencrypt()
)
