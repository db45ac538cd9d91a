"""Celery jobs of the authorization server. Thin: each calls a service inside one tenant, through
``jobs.runner`` (one run at a time per tenant, recorded, one summary log line); dispatchers fan out
per tenant. Tasks acknowledge late and are idempotent."""

from __future__ import annotations

from celery import shared_task

from jobs.fanout import fan_out
from jobs.runner import Counts, run_in_tenant
from oauth.services import drop_expired_refresh_state, expire_unused_clients
from oauth.sweeps import purge_tokens, revoke_departed
from tenants.models import Tenant

EXPIRE_CLIENTS = "oauth.expire_unused_clients_in_tenant"
PURGE = "oauth.purge_tokens_in_tenant"
REVOKE_DEPARTED = "oauth.revoke_departed_in_tenant"


def _daily_cleanup(tenant: Tenant) -> Counts:
    successors = drop_expired_refresh_state()  # kept successor pairs past their grace window
    return {"clients_expired": expire_unused_clients(), "refresh_state_dropped": successors}


@shared_task(name=EXPIRE_CLIENTS, acks_late=True)
def expire_unused_clients_in_tenant(slug: str, run_id: str = "") -> int:
    return run_in_tenant(job=EXPIRE_CLIENTS, slug=slug, work=_daily_cleanup, run_id=run_id).get("clients_expired", 0)


@shared_task(name="oauth.expire_unused_clients_everywhere", acks_late=True)
def expire_unused_clients_everywhere() -> int:
    """The daily dispatcher: one ``expire_unused_clients_in_tenant`` per active tenant."""
    return fan_out(expire_unused_clients_in_tenant)


@shared_task(name=PURGE, acks_late=True)
def purge_tokens_in_tenant(slug: str, run_id: str = "") -> Counts:
    return run_in_tenant(job=PURGE, slug=slug, work=lambda _: purge_tokens(), run_id=run_id, include_inactive=True)


@shared_task(name="oauth.purge_tokens", acks_late=True)
def purge_tokens_everywhere() -> int:
    return fan_out(purge_tokens_in_tenant, include_inactive=True)


@shared_task(name=REVOKE_DEPARTED, acks_late=True)
def revoke_departed_in_tenant(slug: str, run_id: str = "") -> Counts:
    return run_in_tenant(
        job=REVOKE_DEPARTED,
        slug=slug,
        work=lambda tenant: revoke_departed(tenant_active=tenant.is_active),
        run_id=run_id,
        include_inactive=True,
    )


@shared_task(name="oauth.revoke_departed", acks_late=True)
def revoke_departed_everywhere() -> int:
    return fan_out(revoke_departed_in_tenant, include_inactive=True)
