"""Running one job in one tenant: at most one at a time across every worker and beat (a PostgreSQL
session-level advisory lock, released by the server if the worker dies), one summary log line,
and the run recorded on ``JobRun`` for the platform admin.

A job's work is a function returning counts by outcome (``{"refreshed": 3, "backoff": 1}``); it
must be idempotent (a redelivered or repeated run finds nothing left to do). Errors are recorded by
class and code only: never a message that could carry a secret."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from jobs.models import JobRun
from tenants.models import Tenant

log = logging.getLogger("jobs")

Counts = dict[str, int]
MAX_ERRORS = 20


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"jobs:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Yield True if this process holds the cluster-wide lock ``name`` (else another one runs it)."""
    key = _lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:  # the connection died: the server released the lock with it
                connection.close()


def error_label(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}:{code}" if isinstance(code, str) else type(exc).__name__


def record(*, job: str, slug: str, run_id: str, counts: Counts, errors: list[str], started: float) -> None:
    """Upsert the job's row for the tenant. Parts of one run (same ``run_id``) add up."""
    now = timezone.now()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    outcome = JobRun.Outcome.FAILED if errors else JobRun.Outcome.OK
    with schema_context(get_public_schema_name()), transaction.atomic():
        row, created = JobRun.objects.select_for_update().get_or_create(
            job=job, tenant_slug=slug, defaults={"started_at": now, "run_id": run_id}
        )
        if not created and run_id and row.run_id == run_id:  # another part of the same run
            merged = dict(row.counts)
            for key, value in counts.items():
                merged[key] = merged.get(key, 0) + value
            row.counts = merged
            row.errors = (row.errors + errors)[:MAX_ERRORS]
            if row.outcome == JobRun.Outcome.FAILED:
                outcome = JobRun.Outcome.FAILED
            row.duration_ms = max(row.duration_ms, int((now - row.started_at).total_seconds() * 1000))
        else:
            row.run_id, row.counts, row.errors = run_id, counts, errors[:MAX_ERRORS]
            row.started_at = now - timedelta(milliseconds=elapsed_ms)
            row.duration_ms = elapsed_ms
            row.runs += 1
        row.outcome, row.finished_at = outcome, now
        row.save()


def summary(job: str, slug: str, outcome: str, counts: Counts, started: float) -> None:
    parts = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    elapsed_ms = int((time.monotonic() - started) * 1000)
    log.info("job=%s tenant=%s outcome=%s %s duration_ms=%d", job, slug, outcome, parts, elapsed_ms)


def run_in_tenant(
    *,
    job: str,
    slug: str,
    work: Callable[[Tenant], Counts],
    run_id: str = "",
    include_inactive: bool = False,
    single: bool = True,
) -> Counts:
    """Run ``work(tenant)`` inside the tenant's schema; skip a gone (or, unless ``include_inactive``,
    deactivated) tenant. ``single``: at most one run of this job in this tenant at a time; a second
    one returns ``{"skipped": 1}`` without touching anything (jobs that claim rows themselves, like
    the refresh, may run in parallel)."""
    started = time.monotonic()
    tenant = Tenant.objects.filter(schema_name=slug).first()
    if tenant is None or not (tenant.is_active or include_inactive):
        summary(job, slug, "skipped_gone" if tenant is None else "skipped_inactive", {}, started)
        return {}
    with exclusive(f"{job}:{slug}") if single else _always() as held:
        if not held:
            summary(job, slug, "skipped_running_elsewhere", {"skipped": 1}, started)
            return {"skipped": 1}
        errors: list[str] = []
        try:
            with tenant_context(tenant):
                counts = work(tenant)
        except Exception as exc:
            errors.append(error_label(exc))
            summary(job, slug, "failed", {"errors": 1}, started)
            try:
                record(job=job, slug=slug, run_id=run_id, counts={}, errors=errors, started=started)
            except Exception:  # the database may be what failed
                log.warning("job=%s tenant=%s run could not be recorded", job, slug)
            raise
        summary(job, slug, "failed" if errors else "ok", counts, started)
        record(job=job, slug=slug, run_id=run_id, counts=counts, errors=errors, started=started)
        return counts


@contextmanager
def _always() -> Iterator[bool]:
    yield True
