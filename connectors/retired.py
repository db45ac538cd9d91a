"""Grants no connected account holds any more, revoked (RFC 7009) where they were issued.

A grant is *retired* when its tokens leave the account's ``Credential`` without having been revoked:
the previous grant of an account being reconnected, every grant of a provider whose endpoints or
client changed, the tokens a refresh got for an account that was disconnected or reconnected while
the provider was answering. The ``RetiredGrant`` row keeps the tokens (encrypted) with a snapshot of
the provider's revocation endpoint and client credentials *as they were*, so a provider edited later
never receives them. Revocation is tried at once (a few, after the caller's commit) and retried by
``connectors.sweep`` with backoff; a revoked grant's row is deleted. A provider that refuses a
revocation outright (not a transient failure: the client is gone, the token type unsupported) will
never accept it, so that row is deleted too (logged).

The tokens of an account that ended (``revocation_pending``) are revoked from its own ``Credential``
by ``revoke_account``: at once by the write that ended it, then by the sweep (``connectors.lifecycle``).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from connectors import backoff, statements, upstream
from connectors.errors import ConnectorError, ProviderUnavailable
from connectors.models import ConnectedAccount, Credential, Provider, RetiredGrant

log = logging.getLogger(__name__)

Counts = dict[str, int]

def retire_credentials(*, provider: Provider, reason: str, account_id: int | None = None) -> int:
    """Move the stored credentials of ``provider``'s accounts (or of one account) into retired grants
    with a snapshot of ``provider`` as it is now, and delete them. Inside the caller's transaction
    (which should hold the provider's or the account's row lock). Returns how many were retired."""
    params = {
        "reason": reason,
        "endpoint": provider.revocation_endpoint,
        "client_id": provider.client_id,
        "secret": statements.CLIENT_SECRET.get_db_prep_save(provider.client_secret, connection),
        "method": provider.token_endpoint_auth_method,
        "now": timezone.now(),
        "provider": provider.pk,
        "account": account_id,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statements.RETIRE, params)
        retired = cursor.rowcount
        credentials = Credential.objects.filter(account__provider=provider)
        if account_id is not None:
            credentials = credentials.filter(account_id=account_id)
        credentials.delete()
    return retired


def _snapshot(
    provider: Provider, *, reason: str, access_token: str, refresh_token: str | None, account_id: int | None
) -> RetiredGrant:
    return RetiredGrant(
        provider_id=provider.pk,
        account_id=account_id,
        reason=reason,
        revocation_endpoint=provider.revocation_endpoint,
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        token_endpoint_auth_method=provider.token_endpoint_auth_method,
        access_token=access_token,
        refresh_token=refresh_token,
    )


def retire_tokens(
    *, provider: Provider, reason: str, access_token: str, refresh_token: str | None, account_id: int | None = None
) -> RetiredGrant:
    """Keep tokens being replaced for revocation at ``provider`` (as it is now)."""
    grant = _snapshot(
        provider, reason=reason, access_token=access_token, refresh_token=refresh_token, account_id=account_id
    )
    grant.save()
    return grant


def _as_provider(grant: RetiredGrant) -> Provider:
    """An unsaved provider holding the snapshot: what ``upstream.revoke`` reads."""
    return Provider(
        pk=grant.provider_id,
        revocation_endpoint=grant.revocation_endpoint,
        client_id=grant.client_id,
        client_secret=grant.client_secret,
        token_endpoint_auth_method=grant.token_endpoint_auth_method,
    )


def revoke(grant: RetiredGrant) -> bool:
    """Revoke the grant's refresh token, then its access token; delete its row (if saved) once done.
    False: a transient failure, kept for the sweep (a revoked refresh token is not sent again)."""
    snapshot = _as_provider(grant)
    try:
        if grant.refresh_token:
            upstream.revoke(snapshot, grant.refresh_token, "refresh_token")
            RetiredGrant.objects.filter(pk=grant.pk).update(refresh_token=None)
            grant.refresh_token = None
        if grant.access_token:
            upstream.revoke(snapshot, grant.access_token, "access_token")
    except ProviderUnavailable as exc:
        log.warning("connectors: revocation of retired grant %s failed (%s); the sweep retries", grant.pk, exc.code)
        return False
    except ConnectorError as exc:  # refused for good: retrying cannot help
        log.warning("connectors: the provider refused to revoke retired grant %s (%s); dropped", grant.pk, exc.code)
    RetiredGrant.objects.filter(pk=grant.pk).delete()
    return True


def discard(*, provider: Provider, tokens: upstream.TokenSet, reason: str, account_id: int | None = None) -> None:
    """Tokens the provider issued that no account will hold (the account changed while they were
    being fetched, or the answer was refused): revoked now, kept for the sweep only if the provider
    does not answer."""
    grant = _snapshot(
        provider,
        reason=reason,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        account_id=account_id,
    )
    if revoke(grant):
        return
    try:
        with transaction.atomic():
            grant.account_id = ConnectedAccount.objects.filter(pk=account_id).values_list("pk", flat=True).first()
            grant.save()
    except DatabaseError:  # the provider itself is gone: nothing left to keep the grant with
        log.warning("connectors: unrevoked tokens of provider %s could not be kept for the sweep", provider.pk)


def revoke_account(account: ConnectedAccount) -> bool:
    """Revoke the stored tokens of an account that ended (disconnected, its member gone, its provider
    deleted) at the provider, then delete them. False when revocation failed. A credential written
    meanwhile (a reconnect: another generation) is not deleted."""
    credential = Credential.objects.filter(account=account).first()
    if credential is not None:
        try:
            if credential.refresh_token:
                upstream.revoke(account.provider, credential.refresh_token, "refresh_token")
            upstream.revoke(account.provider, credential.access_token, "access_token")
        except ConnectorError as exc:
            log.warning("connectors: revocation of account %s failed (%s); the sweep retries", account.pk, exc.code)
            return False
    with transaction.atomic():
        if credential is not None:
            Credential.objects.filter(pk=credential.pk, generation=credential.generation).delete()
        ConnectedAccount.objects.filter(pk=account.pk).update(revocation_pending=False, updated_at=timezone.now())
    return True


def pending(*, provider_id: int | None = None, account_id: int | None = None) -> QuerySet[RetiredGrant]:
    grants = RetiredGrant.objects.all()
    if provider_id is not None:
        grants = grants.filter(provider_id=provider_id)
    if account_id is not None:
        grants = grants.filter(account_id=account_id)
    return grants.order_by("pk")


def revoke_some(grants: QuerySet[RetiredGrant], *, limit: int) -> tuple[int, int]:
    """Revoke up to ``limit`` of ``grants`` now, stopping at the first transient failure (the provider
    is down: the sweep retries). Returns (revoked, still pending)."""
    revoked = 0
    for grant in grants[:limit]:
        if not revoke(grant):
            break
        revoked += 1
    return revoked, grants.count()


def sweep(*, batch_size: int = 100) -> Counts:
    """``connectors.sweep``: revoke retired grants that are due, claimed in batches (``SKIP LOCKED`` and
    a lease, as the account revocations); a transient failure backs off."""
    counts: Counts = {"retired_revoked": 0, "retired_failed": 0}
    while True:
        batch = backoff.claim_due(
            RetiredGrant.objects.all(), field="next_attempt_at", now=timezone.now(), size=batch_size
        )
        if not batch:
            return counts
        for grant in RetiredGrant.objects.filter(pk__in=batch).order_by("pk"):
            if revoke(grant):
                counts["retired_revoked"] += 1
                continue
            counts["retired_failed"] += 1
            attempts = grant.attempts + 1
            RetiredGrant.objects.filter(pk=grant.pk).update(
                attempts=attempts, next_attempt_at=timezone.now() + backoff.revocation_retry(attempts)
            )
