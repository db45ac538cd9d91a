"""Lifecycle events from the tenants app, acted on inside the tenant's schema."""

from __future__ import annotations

from django.dispatch import receiver
from django_tenants.utils import tenant_context

from oauth.services import revoke_all_tokens, revoke_user_tokens
from observability import metrics
from tenants.signals import membership_ended, tenant_deactivated


@receiver(membership_ended)
def revoke_tokens_of_ended_membership(sender, tenant, user, membership, **kwargs) -> None:
    with tenant_context(tenant):
        revoked = revoke_user_tokens(user_id=user.pk)
    metrics.revocation(tenant.schema_name, "membership_ended", revoked)  # observability


@receiver(tenant_deactivated)
def revoke_tokens_of_deactivated_tenant(sender, tenant, **kwargs) -> None:
    with tenant_context(tenant):
        revoked = revoke_all_tokens()
    metrics.revocation(tenant.schema_name, "tenant_deactivated", revoked)  # observability
