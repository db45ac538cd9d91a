"""Lifecycle events from the tenants app, and changes of the tenant's identity providers, acted on
inside the tenant's schema."""

from __future__ import annotations

from django.db import connection
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django_tenants.utils import tenant_context

from identity.models import IdentityProvider
from oauth.services import revoke_all_tokens, revoke_user_tokens, revoke_vouched_tokens
from observability import audit, metrics
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


# An identity provider record saved (CLI, tenant admin, platform admin) or deleted in the current
# tenant's schema, inside the same transaction as the change: the access tokens its ID-JAGs obtained
# die with its trust, so the next call with one of them is refused.
@receiver(post_save, sender=IdentityProvider, dispatch_uid="oauth.id_jag_trust_changed")
def revoke_when_id_jag_trust_ends(sender, instance: IdentityProvider, **kwargs) -> None:
    trusted = instance.accept_id_jag and instance.is_enabled
    revoked = revoke_vouched_tokens(provider_id=instance.pk, keep_issuer=instance.issuer if trusted else None)
    _report(revoked)


@receiver(pre_delete, sender=IdentityProvider, dispatch_uid="oauth.id_jag_provider_deleted")
def revoke_before_provider_goes(sender, instance: IdentityProvider, **kwargs) -> None:
    _report(revoke_vouched_tokens(provider_id=instance.pk))


def _report(revoked: int) -> None:
    if revoked:
        metrics.revocation(connection.schema_name, "id_jag_trust_removed", revoked)
        audit.record(event="id_jag_trust", outcome="tokens_revoked")
