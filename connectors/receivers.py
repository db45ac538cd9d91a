"""Lifecycle events from the tenants app: the upstream accounts of a member who left, or of a
deactivated tenant, are revoked at the provider at once (``connectors.sweep`` every 15 minutes stays
the safety net for a missed event).

The tenants app sends ``membership_ended`` / ``tenant_deactivated`` from ``transaction.on_commit``
(the change is committed: the sweep's worker sees it); the receiver queues the tenant's upstream
sweep (``connectors.sweep_after_event_in_tenant``) and never raises: a broker that is down must not
hide the membership change from its caller, nor stop the other receivers (the platform-token
revocation in ``oauth``)."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from connectors.tasks import sweep_after_event_in_tenant
from tenants.models import Tenant
from tenants.signals import membership_ended, tenant_deactivated

log = logging.getLogger(__name__)

# a broker that does not answer at once: give up quickly, the periodic sweep will do it
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def queue_upstream_sweep(tenant: Tenant, reason: str) -> None:
    try:
        sweep_after_event_in_tenant.apply_async((tenant.schema_name,), retry_policy=PUBLISH_RETRY)
    except Exception:  # any broker error: logged, the periodic sweep catches up
        log.warning("connectors: could not queue the upstream sweep of %s after %s", tenant.schema_name, reason)


@receiver(membership_ended, dispatch_uid="connectors.sweep_after_membership_ended")
def sweep_after_membership_ended(sender, tenant: Tenant, **kwargs) -> None:
    queue_upstream_sweep(tenant, "membership_ended")


@receiver(tenant_deactivated, dispatch_uid="connectors.sweep_after_tenant_deactivated")
def sweep_after_tenant_deactivated(sender, tenant: Tenant, **kwargs) -> None:
    queue_upstream_sweep(tenant, "tenant_deactivated")
