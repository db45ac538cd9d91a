"""The writes on tokens that are one hand-written statement each: the token endpoint's code exchange
(the grant deleted, the code recorded, the access and refresh tokens inserted, the client touched)
and refresh-token rotation (the token revoked, its access token deleted, the new pair inserted, the
pair kept for the grace window), written with DOT's model metadata as ``Model.save`` would write
them, signals included; and the resource server's step-up challenge on a token's family, beside the
ORM expression it mirrors (``tests/test_statements.py`` runs both on the same rows).
The policy that decides when they run is ``oauth.validators`` (``oauth.stepup``); the reads before
them are ``oauth.token_reads``.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from django.db import connection
from django.db.models import signals
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken
from oauth2_provider.settings import oauth2_settings

from oauth.models import ClientProfile, RedeemedCode, RefreshSuccessor, StepUpChallenge


def exchange_in_one_statement(
    grant: Grant, access: AccessToken, refresh: RefreshToken, *, code_checksum: str, application
) -> bool:
    """Delete the grant, record the redeemed code, insert the access token and the refresh token (its
    ``access_token_id`` the new access token's) and touch the client's ``last_used_at``, all in one
    autocommitted statement, each step only if the previous one did something; False when the grant
    was already gone (a concurrent exchange) or the code already recorded. Sets the new rows' ids."""
    q = connection.ops.quote_name
    _before_insert(access, refresh)
    at_cols, at_ph, at_vals = _insert_parts(access)
    rt_cols, rt_ph, rt_vals = _insert_parts(refresh, skip=("access_token_id",))
    now = timezone.now()
    sql = (
        f"WITH gone AS (DELETE FROM {q(Grant._meta.db_table)} WHERE id = %s RETURNING id), "  # noqa: S608
        f"redeemed AS (INSERT INTO {q(RedeemedCode._meta.db_table)} (code_checksum, application_id, "
        "token_family, code_challenge, code_challenge_method, redeemed_at) "
        "SELECT %s, %s, %s::uuid, %s, %s, %s::timestamptz FROM gone "
        "ON CONFLICT (code_checksum) DO NOTHING RETURNING id), "
        f"access AS (INSERT INTO {q(AccessToken._meta.db_table)} ({at_cols}) "
        f"SELECT {at_ph} FROM redeemed RETURNING id), "
        f"refresh AS (INSERT INTO {q(RefreshToken._meta.db_table)} ({rt_cols}, access_token_id) "
        f"SELECT {rt_ph}, access.id FROM access RETURNING id), "
        f"touched AS (UPDATE {q(ClientProfile._meta.db_table)} SET last_used_at = %s "
        "WHERE application_id = %s AND EXISTS (SELECT 1 FROM refresh)) "
        "SELECT access.id, refresh.id FROM access, refresh"
    )
    params = [
        grant.pk,
        code_checksum,
        application.pk,
        refresh.token_family,
        grant.code_challenge,
        grant.code_challenge_method,
        now,
        *at_vals,
        *rt_vals,
        now,
        application.pk,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    refresh.access_token = access
    return _inserted((access, refresh), row)


def retire(rt: RefreshToken) -> None:
    """Revoke a rotated refresh token and delete its access token (DOT's ``RefreshToken.revoke``). The
    access token's only referrer is this refresh token's ``access_token``, cleared in the same
    statement; nothing listens to its deletion."""
    access, refresh = AccessToken._meta.db_table, RefreshToken._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {access} WHERE id = %s) "  # noqa: S608 (model metadata)
            f"UPDATE {refresh} SET revoked = %s, updated = %s, access_token_id = NULL WHERE id = %s",
            [rt.access_token_id, now, now, rt.pk],
        )


def keep_successor(rt: RefreshToken, successor: RefreshToken, token: dict, application) -> None:
    """In one statement: drop this family's older answers (their successor has just been used) and any
    past the grace window (``SKIP LOCKED``: never wait on, or deadlock with, another family's refresh;
    whatever is skipped goes on a later refresh or the daily sweep), keep the Fernet-encrypted pair
    this token was rotated to, and touch the client's ``last_used_at``."""
    table, profile = RefreshSuccessor._meta.db_table, ClientProfile._meta.db_table
    now = timezone.now()
    cutoff = now - timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
    pair = {"access_token": token["access_token"], "refresh_token": token["refresh_token"]}
    encrypted = RefreshSuccessor._meta.get_field("pair").get_db_prep_save(pair, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH dropped AS (DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
            "WHERE token_family = %s OR created_at <= %s FOR UPDATE SKIP LOCKED)), "
            f"touched AS (UPDATE {profile} SET last_used_at = %s WHERE application_id = %s) "
            f"INSERT INTO {table} (refresh_token_id, successor_id, token_family, pair, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [rt.token_family, cutoff, now, application.pk, rt.pk, successor.pk, rt.token_family, encrypted, now],
        )


def rotation_in_one_statement(
    rt: RefreshToken, access: AccessToken, successor: RefreshToken, token: dict, application
) -> bool:
    """One autocommitted statement: revoke ``rt`` if it is still live (the UPDATE takes its row lock;
    a concurrent rotation makes it match nothing, and then nothing below happens), delete its access
    token (``retire``), insert the new access token and the successor refresh token, then
    ``keep_successor``'s work: drop the family's older kept answers and any past the grace window,
    keep the encrypted new pair, touch the client's ``last_used_at``. Sets the new rows' ids."""
    q = connection.ops.quote_name
    access_table, refresh_table = q(AccessToken._meta.db_table), q(RefreshToken._meta.db_table)
    kept, profile = q(RefreshSuccessor._meta.db_table), q(ClientProfile._meta.db_table)
    _before_insert(access, successor)
    at_cols, at_ph, at_vals = _insert_parts(access)
    rt_cols, rt_ph, rt_vals = _insert_parts(successor, skip=("access_token_id",))
    now = timezone.now()
    cutoff = now - timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
    pair = {"access_token": token["access_token"], "refresh_token": token["refresh_token"]}
    encrypted = RefreshSuccessor._meta.get_field("pair").get_db_prep_save(pair, connection)
    sql = (
        f"WITH retired AS (UPDATE {refresh_table} SET revoked = %s, updated = %s, access_token_id = NULL "  # noqa: S608
        "WHERE id = %s AND revoked IS NULL RETURNING id), "
        f"gone AS (DELETE FROM {access_table} WHERE id = %s AND EXISTS (SELECT 1 FROM retired)), "
        f"access AS (INSERT INTO {access_table} ({at_cols}) SELECT {at_ph} FROM retired RETURNING id), "
        f"refresh AS (INSERT INTO {refresh_table} ({rt_cols}, access_token_id) "
        f"SELECT {rt_ph}, access.id FROM access RETURNING id), "
        f"dropped AS (DELETE FROM {kept} WHERE EXISTS (SELECT 1 FROM refresh) AND id IN (SELECT id FROM {kept} "
        "WHERE token_family = %s OR created_at <= %s FOR UPDATE SKIP LOCKED)), "
        f"touched AS (UPDATE {profile} SET last_used_at = %s WHERE application_id = %s "
        "AND EXISTS (SELECT 1 FROM refresh)), "
        f"keep AS (INSERT INTO {kept} (refresh_token_id, successor_id, token_family, pair, created_at) "
        "SELECT %s, refresh.id, %s::uuid, %s::bytea, %s::timestamptz FROM refresh) "
        "SELECT access.id, refresh.id FROM access, refresh"
    )
    params = [
        now,
        now,
        rt.pk,
        rt.access_token_id,
        *at_vals,
        *rt_vals,
        rt.token_family,
        cutoff,
        now,
        application.pk,
        rt.pk,
        rt.token_family,
        encrypted,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    rt.revoked, rt.access_token_id = now, None
    successor.access_token = access
    return _inserted((access, successor), row)


def _inserted(instances: tuple, row: tuple | None) -> bool:
    """After a one-statement insert: each instance gets its id from ``row`` and is marked saved, and
    ``post_save`` is sent for it as ``Model.save`` would (``pre_save`` went before the statement), so
    receivers of DOT's token models see these rows like any other. False when nothing was inserted."""
    if row is None:
        return False
    for instance, pk in zip(instances, row, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
    for instance in instances:
        signals.post_save.send(
            sender=type(instance),
            instance=instance,
            created=True,
            update_fields=None,
            raw=False,
            using=connection.alias,
        )
    return True


def _before_insert(*instances) -> None:
    for instance in instances:
        signals.pre_save.send(
            sender=type(instance), instance=instance, raw=False, using=connection.alias, update_fields=None
        )


@functools.cache
def _insert_shape(model, skip: tuple[str, ...]) -> tuple[tuple, str, str]:
    """The fields an INSERT of ``model`` writes (``Model.save``'s: all but the primary key, less
    ``skip``), its column list and its typed placeholders."""
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in skip)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(f"%s::{f.db_type(connection)}" for f in fields)
    return fields, columns, placeholders


def _insert_parts(instance, skip: tuple[str, ...] = ()) -> tuple[str, str, list]:
    """Columns, typed placeholders and values of an unsaved model instance, as ``Model.save`` would
    write them (each field's ``pre_save``: ``auto_now``, DOT's token checksum; ``get_db_prep_save``)."""
    fields, columns, placeholders = _insert_shape(type(instance), skip)
    return columns, placeholders, [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]


# --- the resource server's step-up challenge (oauth.stepup) ------------------------------------------


def record_step_up_rule(access_checksum: str, scope: str) -> None:
    """The family of the access token (through its refresh token) is challenged for ``scope`` now."""
    family = (
        RefreshToken.objects.filter(access_token__token_checksum=access_checksum, token_family__isnull=False)
        .values_list("token_family", flat=True)
        .first()
    )
    if family is not None:
        StepUpChallenge.objects.update_or_create(
            token_family=family, defaults={"scope": scope, "challenged_at": timezone.now()}
        )


@functools.cache
def _record_step_up_sql() -> str:
    challenge = StepUpChallenge._meta.db_table
    access, refresh = AccessToken._meta.db_table, RefreshToken._meta.db_table
    return f"""
        INSERT INTO {challenge} (token_family, scope, challenged_at)
        SELECT r.token_family, %s, now()
          FROM {access} a JOIN {refresh} r ON r.access_token_id = a.id
         WHERE a.token_checksum = %s AND r.token_family IS NOT NULL
        ON CONFLICT (token_family) DO UPDATE SET scope = EXCLUDED.scope, challenged_at = EXCLUDED.challenged_at
    """  # noqa: S608 (table names come from model metadata, values are parameters)


def record_step_up(access_checksum: str, scope: str) -> None:
    """``record_step_up_rule`` in one statement (the 403 path pays no read first)."""
    with connection.cursor() as cursor:
        cursor.execute(_record_step_up_sql(), [scope, access_checksum])
