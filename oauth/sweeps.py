"""Services of the authorization server's sweeps (current tenant schema).

- ``purge_tokens``: django-oauth-toolkit's own ``clear_expired`` (batched by
  ``CLEAR_EXPIRED_TOKENS_BATCH_SIZE``): expired access tokens, grants and ID tokens, refresh tokens
  past their idle expiry, revoked ones once reuse detection no longer needs them;
- ``revoke_departed``: the safety net behind the ``membership_ended`` / ``tenant_deactivated``
  receivers: live tokens, codes and consents of users who are not active members of the tenant
  (every token, if the tenant is deactivated) are revoked, even if the event was missed; so is
  whatever a client the tenant admin disabled still holds (``oauth.client_blocks``), and the tokens
  obtained with ID-JAGs of an identity provider the tenant no longer trusts for them (``oauth.receivers``
  revokes those when the trust is removed).
"""

from __future__ import annotations

from django.db import connection
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken, clear_expired

from oauth.client_blocks import revoke_blocked
from oauth.services import revoke_all_tokens, revoke_untrusted_vouched_tokens, revoke_user_tokens
from tenants.models import Membership

Counts = dict[str, int]


def _sizes() -> dict[str, int]:
    return {
        "access_tokens": AccessToken.objects.count(),
        "refresh_tokens": RefreshToken.objects.count(),
        "grants": Grant.objects.count(),
        "id_tokens": IDToken.objects.count(),
    }


def purge_tokens() -> Counts:
    before = _sizes()
    clear_expired()
    after = _sizes()
    return {f"{name}_purged": before[name] - after[name] for name in before}


def _holders() -> set[int]:
    """Users holding anything live in this tenant: access tokens, unrevoked refresh tokens, codes."""
    users: set[int] = set()
    users.update(AccessToken.objects.exclude(user=None).values_list("user_id", flat=True).distinct())
    users.update(
        RefreshToken.objects.filter(revoked__isnull=True)
        .exclude(user=None)
        .values_list("user_id", flat=True)
        .distinct()
    )
    users.update(Grant.objects.values_list("user_id", flat=True).distinct())
    return users


def revoke_departed(*, tenant_active: bool) -> Counts:
    if not tenant_active:
        return {"tenant_tokens_revoked": revoke_all_tokens()}
    blocked = revoke_blocked()  # disabled clients (oauth.client_blocks): normally nothing is left
    untrusted = revoke_untrusted_vouched_tokens()  # ID-JAG tokens of a provider no longer trusted: likewise
    members = set(
        Membership.objects.active().filter(tenant_id=connection.tenant.pk).values_list("user_id", flat=True)
    )
    departed = sorted(_holders() - members)
    revoked = sum(revoke_user_tokens(user_id=user_id) for user_id in departed)
    return {
        "departed_users": len(departed),
        "tokens_revoked": revoked,
        "blocked_client_tokens_revoked": blocked,
        "untrusted_id_jag_tokens_revoked": untrusted,
    }
