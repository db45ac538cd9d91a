"""Celery jobs of the authorization server. Thin: each calls a service inside one tenant, through
``jobs.runner`` (one run at a time per tenant, recorded, one summary log line); dispatchers fan out
per tenant. Tasks acknowledge late and are idempotent."""

from __future__ import annotations

from celery import shared_task

from jobs.fanout import fan_out, sweep_tasks
from jobs.runner import Counts, run_in_tenant
from oauth.services import drop_expired_refresh_state, expire_unused_clients
from oauth.sweeps import purge_tokens, revoke_departed
from tenants.models import Tenant
from tenants.user_references import sweep_orphans

EXPIRE_CLIENTS = "oauth.expire_unused_clients_in_tenant"
PURGE = "oauth.purge_tokens_in_tenant"
REVOKE_DEPARTED = "oauth.revoke_departed_in_tenant"
SWEEP_USER_REFERENCES = "oauth.sweep_user_references_in_tenant"


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


purge_tokens_in_tenant, purge_tokens_everywhere = sweep_tasks(PURGE, "oauth.purge_tokens", lambda _: purge_tokens())
revoke_departed_in_tenant, revoke_departed_everywhere = sweep_tasks(
    REVOKE_DEPARTED, "oauth.revoke_departed", lambda tenant: revoke_departed(tenant_active=tenant.is_active)
)
# rows of each tenant pointing at users that no longer exist (``tenants.user_references``)
sweep_user_references_in_tenant, sweep_user_references_everywhere = sweep_tasks(
    SWEEP_USER_REFERENCES, "oauth.sweep_user_references", lambda _: sweep_orphans()
)
