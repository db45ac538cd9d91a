"""Lifecycle events from the tenants app: the upstream accounts of a member who left, or of a
deactivated tenant, are revoked at the provider at once (``connectors.sweep`` every 15 minutes stays
the safety net for a missed event).

The tenants app sends ``membership_ended`` / ``tenant_deactivated`` from ``transaction.on_commit``
(the change is committed: the sweep's worker sees it); the receiver queues the tenant's upstream
sweep (``connectors.sweep_after_event_in_tenant``, by ``connectors.services.queue_upstream_sweep``)
and never raises: a broker that is down must not hide the membership change from its caller, nor
stop the other receivers (the platform-token revocation in ``oauth``)."""

from __future__ import annotations

from django.dispatch import receiver

from connectors.services import queue_upstream_sweep
from tenants.models import Tenant
from tenants.signals import membership_ended, tenant_deactivated


@receiver(membership_ended, dispatch_uid="connectors.sweep_after_membership_ended")
def sweep_after_membership_ended(sender, tenant: Tenant, **kwargs) -> None:
    queue_upstream_sweep(tenant, "membership_ended")


@receiver(tenant_deactivated, dispatch_uid="connectors.sweep_after_tenant_deactivated")
def sweep_after_tenant_deactivated(sender, tenant: Tenant, **kwargs) -> None:
    queue_upstream_sweep(tenant, "tenant_deactivated")
