"""The connectors' hand-written SQL, each statement beside the ORM expression it mirrors (the rule);
``tests/test_statements.py`` runs both on the same rows. Change them together.

``MARK`` and ``STORE`` are the refresh's two statements (why one statement each: ``connectors.tokens``);
``RETIRE`` moves every credential of a provider into retired grants without decrypting them
(``connectors.retired``); the ciphertext statements re-encrypt under the newest key (``connectors.crypto``)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, models
from django.db.models import F, Q, QuerySet
from fernet_fields import EncryptedField

from connectors import timing
from connectors.models import ConnectedAccount, Credential, Provider, RetiredGrant

Status = ConnectedAccount.Status

_ACCOUNTS = ConnectedAccount._meta.db_table
_CREDENTIALS = Credential._meta.db_table
_RETIRED = RetiredGrant._meta.db_table
ACCESS_TOKEN = Credential._meta.get_field("access_token")
REFRESH_TOKEN = Credential._meta.get_field("refresh_token")
GRANTED_SCOPES = ConnectedAccount._meta.get_field("granted_scopes")
CLIENT_SECRET = RetiredGrant._meta.get_field("client_secret")


# --- mark an account ``refreshing`` ------------------------------------------------------------------


def mark_rule(account_id: int, rule: timing.Rule, now: datetime) -> int:
    """Refreshable (a credential with a refresh token) and either due by ``rule`` or left
    ``refreshing`` by a refresher that died: marked ``refreshing`` now. How many were marked."""
    return (
        ConnectedAccount.objects.filter(pk=account_id, credential__refresh_token__isnull=False)
        .filter(Q(status=Status.REFRESHING) | (Q(status=Status.ACTIVE) & timing.due_filter(rule, now)))
        .update(status=Status.REFRESHING, refreshing_since=now, updated_at=now)
    )


# the common case of ``connectors.tokens._mark_or_settle``; it also answers whether a refresher died
# before (the old row was ``refreshing``, or its last refresh was unconfirmed) and what the refresh needs.
# Parameters: id, unconfirmed (``connectors.tokens.UNCONFIRMED``) and ``timing.due_params``.
MARK = f"""
WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
UPDATE {_ACCOUNTS} AS a SET status = 'refreshing', refreshing_since = %(now)s, updated_at = %(now)s
FROM async, (SELECT id, status, status_reason FROM {_ACCOUNTS} WHERE id = %(id)s FOR UPDATE) AS old,
  {_CREDENTIALS} AS c
WHERE a.id = old.id AND c.account_id = a.id AND c.refresh_token IS NOT NULL
  AND (a.status = 'refreshing' OR (a.status = 'active' AND {timing.DUE_SQL}))
RETURNING old.status = 'refreshing' OR old.status_reason = %(unconfirmed)s, a.user_id, a.provider_id, c.refresh_token,
  c.generation
"""  # noqa: S608 (table names come from model metadata, values are parameters)


# --- store a refresh's tokens ------------------------------------------------------------------------


def store_rule(
    account_id: int,
    *,
    generation: int,
    now: datetime,
    access: str,
    refresh: str | None,
    token_type: str,
    expires_at: datetime | None,
    lifetime: int | None,
    scopes: list[str] | None,
) -> bool:
    """The rotated tokens, only into the credential generation they were refreshed for, and the
    account's new state; ``refreshing`` goes back to ``active``, any other state is kept."""
    tokens = {"access_token": access} | ({"refresh_token": refresh} if refresh is not None else {})
    stored = Credential.objects.filter(account_id=account_id, generation=generation).update(
        **tokens, token_type=token_type, updated_at=now
    )
    if not stored:
        return False
    ConnectedAccount.objects.filter(pk=account_id, status=Status.REFRESHING).update(
        status=Status.ACTIVE, status_reason=""
    )
    fields = {
        "refreshing_since": None,
        "refresh_failures": 0,
        "refresh_failing_since": None,
        "next_refresh_at": None,
        "expires_at": expires_at,
        "token_issued_at": now,
        "token_lifetime_seconds": lifetime,
        "granted_scopes": scopes if scopes is not None else F("granted_scopes"),
        "last_refreshed_at": now,
        "refresh_count": F("refresh_count") + 1,
        "updated_at": now,
    }
    return bool(ConnectedAccount.objects.filter(pk=account_id).update(**fields))


# What the second transaction of the ORM version did, in one statement (one durable commit). Nothing
# is stored unless the credential still has the generation it was read with: a reconnect, a disconnect
# or a provider change meanwhile gave it another one (or deleted it). Parameters: id, generation, now,
# access, refresh, token_type, expires_at, lifetime, scopes (tokens and scopes as the fields store them).
STORE = f"""
WITH c AS (
  UPDATE {_CREDENTIALS} SET access_token = %(access)s, refresh_token = COALESCE(%(refresh)s, refresh_token),
    token_type = %(token_type)s, updated_at = %(now)s
  WHERE account_id = %(id)s AND generation = %(generation)s RETURNING account_id
)
UPDATE {_ACCOUNTS} SET
  status = CASE WHEN status = 'refreshing' THEN 'active' ELSE status END,
  status_reason = CASE WHEN status = 'refreshing' THEN '' ELSE status_reason END,
  refreshing_since = NULL, refresh_failures = 0, refresh_failing_since = NULL, next_refresh_at = NULL,
  expires_at = %(expires_at)s, token_issued_at = %(now)s, token_lifetime_seconds = %(lifetime)s,
  granted_scopes = COALESCE(%(scopes)s, granted_scopes),
  last_refreshed_at = %(now)s, refresh_count = refresh_count + 1, updated_at = %(now)s
WHERE id IN (SELECT account_id FROM c)
RETURNING id
"""  # noqa: S608 (table names come from model metadata, values are parameters)


# --- retire a provider's credentials -----------------------------------------------------------------


def retire_rule(*, provider: Provider, reason: str, account_id: int | None, now: datetime) -> int:
    """A retired grant for every credential of ``provider``'s accounts (or of one account), with a
    snapshot of the provider as it is now. How many."""
    credentials = Credential.objects.filter(account__provider=provider).select_related("account")
    if account_id is not None:
        credentials = credentials.filter(account_id=account_id)
    grants = RetiredGrant.objects.bulk_create(
        RetiredGrant(
            provider_id=provider.pk,
            account_id=credential.account_id,
            reason=reason,
            revocation_endpoint=provider.revocation_endpoint,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            token_endpoint_auth_method=provider.token_endpoint_auth_method,
            access_token=credential.access_token,
            refresh_token=credential.refresh_token,
        )
        for credential in credentials
    )
    RetiredGrant.objects.filter(pk__in=[grant.pk for grant in grants]).update(created_at=now)
    return len(grants)


# the credentials' ciphertext is copied as it is (every encrypted column uses FERNET_KEYS): one
# statement for every account of a provider, nothing decrypted. Parameters: reason, endpoint,
# client_id, secret (as the field stores it), method, now, provider, account (or NULL: all of them).
RETIRE = f"""
INSERT INTO {_RETIRED} (provider_id, account_id, reason, revocation_endpoint, client_id, client_secret,
                        token_endpoint_auth_method, access_token, refresh_token, attempts, next_attempt_at, created_at)
SELECT a.provider_id, a.id, %(reason)s, %(endpoint)s, %(client_id)s, %(secret)s, %(method)s,
       c.access_token, c.refresh_token, 0, NULL, %(now)s
FROM {_CREDENTIALS} AS c JOIN {_ACCOUNTS} AS a ON a.id = c.account_id
WHERE a.provider_id = %(provider)s AND (%(account)s::bigint IS NULL OR a.id = %(account)s::bigint)
"""  # noqa: S608 (table names come from model metadata, values are parameters)


# --- the ciphertext of an encrypted column (re-encryption) -------------------------------------------


def ciphertext_batch_rule(model: type[models.Model], field: EncryptedField, after: int, size: int) -> QuerySet:
    """The next ``size`` rows after the primary key ``after`` that hold a value in ``field``."""
    return model.objects.filter(pk__gt=after, **{f"{field.attname}__isnull": False}).order_by("pk")[:size]


def ciphertext_batch(model: type[models.Model], field: EncryptedField) -> str:
    """``ciphertext_batch_rule``'s rows as (primary key, ciphertext): the ORM would decrypt the value.
    Parameters: after, size."""
    qn = connection.ops.quote_name
    table, column, pk = qn(model._meta.db_table), qn(field.column), qn(model._meta.pk.column)
    return f"SELECT {pk}, {column} FROM {table} WHERE {pk} > %s AND {column} IS NOT NULL ORDER BY {pk} LIMIT %s"  # noqa: S608


def swap_ciphertext(model: type[models.Model], field: EncryptedField) -> str:
    """Replace a row's ciphertext only if it still holds the one that was read (a concurrent write
    wins); no ORM twin: the ORM cannot compare ciphertexts (a lookup on an encrypted field is refused).
    Parameters: the new ciphertext, the primary key, the old ciphertext."""
    qn = connection.ops.quote_name
    table, column, pk = qn(model._meta.db_table), qn(field.column), qn(model._meta.pk.column)
    return f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s"  # noqa: S608
