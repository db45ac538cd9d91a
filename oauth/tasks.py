"""Celery jobs of the authorization server. Thin: each calls a service inside one tenant."""

from __future__ import annotations

from celery import shared_task

from oauth.services import drop_expired_refresh_state, expire_unused_clients
from tenants.fanout import fan_out, in_active_tenant


@shared_task(name="oauth.expire_unused_clients_in_tenant")
def expire_unused_clients_in_tenant(slug: str) -> int:
    return in_active_tenant(slug, _daily_cleanup, default=0)


def _daily_cleanup() -> int:
    drop_expired_refresh_state()  # kept successor pairs past their grace window
    return expire_unused_clients()


@shared_task(name="oauth.expire_unused_clients_everywhere")
def expire_unused_clients_everywhere() -> int:
    """The daily dispatcher: one ``expire_unused_clients_in_tenant`` per active tenant."""
    return fan_out(expire_unused_clients_in_tenant)
