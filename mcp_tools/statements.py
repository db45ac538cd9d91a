"""The MCP endpoint's hand-written SQL, each statement beside the ORM (or DOT) expression it mirrors.

Written as SQL where the ORM costs more than the statement on the hot path (the bearer statement) or
cannot say it in one statement (``INSERT ... ON CONFLICT DO NOTHING RETURNING``). The expression
beside each is the rule the SQL copies: change both together. ``tests/test_mcp_statements.py`` runs
both on the same rows, one test per statement.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from oauth2_provider.models import AccessToken, Application

from accounts.models import User
from mcp_tools.models import IdempotencyRecord, ToolPolicy
from pgtenancy.prepared import TenantStatement
from tenants.models import Membership, Tenant

# --- the caller's role in a tenant -------------------------------------------------------------------


def active_role_sql(user_id_column: str, tenant: str | None = None) -> str:
    """The role of the user in ``user_id_column`` in the tenant given as the one parameter, NULL unless
    an active member. The subquery's own aliases are m, u and mt: ``user_id_column`` must not use them.
    ``tenant``: the alias of a tenant row the enclosing statement already reads, instead of the
    parameter (the bearer statement's ``tn``): its id and ``is_active`` are used, not read again."""
    member, user = Membership._meta.db_table, User._meta.db_table
    if tenant is None:  # the tenant's row read here, by the parameter
        tenant, tenant_id = "mt", "%s"
        join_tenant = f"JOIN public.{Tenant._meta.db_table} mt ON mt.id = m.tenant_id"
    else:
        tenant_id, join_tenant = f"{tenant}.id", ""
    return f"""(SELECT m.role FROM public.{member} m
                  JOIN public.{user} u ON u.id = m.user_id {join_tenant}
                 WHERE m.user_id = {user_id_column} AND m.tenant_id = {tenant_id}
                   AND m.is_active AND u.is_active AND {tenant}.is_active)"""  # noqa: S608 (metadata names)


def active_roles(tenant_id: int) -> QuerySet:
    """Mirrored by ``active_role_sql``: ``(user_id, role)`` of the active members (the membership, its
    user and its tenant all active: ``Membership.objects.active()``, the one place the rule lives)."""
    return Membership.objects.active().filter(tenant_id=tenant_id).values_list("user_id", "role")


# --- the bearer statement ----------------------------------------------------------------------------

TENANT_FIELDS = [f.attname for f in Tenant._meta.concrete_fields]


def _bearer_statement() -> TenantStatement:
    """One statement: the tenant row (always, when the slug exists: ``LEFT JOIN`` of the token), the
    token, its client (``client_id`` and the application's id), the caller's role in this tenant
    (NULL if not an active member: ``active_role_sql``) and the tool's matrix row. The client's
    challenge channel is not read here: only a refused ``tools/call`` needs it
    (``oauth.selectors.challenge_channel_of``), and its subquery cost 8 µs of every call
    (docs/benchmarks.md). Written as SQL because this runs on every MCP request and the ORM's
    compilation of the equivalent Exists/Subquery annotations costs more than the query; prepared
    (``pgtenancy.prepared``) because PostgreSQL's planning of its relations costs more than executing
    it. The tenant's tables are schema-qualified, one statement per schema (``TenantStatement``), so
    calls that alternate between tenants keep each schema's plan instead of re-planning on every call.
    Parameters: the token's SHA-256 checksum (NULL: no token), the tool name ("" for none), the
    tenant's schema name."""
    token, app = AccessToken._meta.db_table, Application._meta.db_table
    policy = ToolPolicy._meta.db_table
    tenant_columns = ", ".join(f"tn.{name}" for name in TENANT_FIELDS)
    return TenantStatement(f"""
        SELECT {tenant_columns},
               t.id, t.user_id, t.scope, t.expires, t.resource, a.client_id,
               {active_role_sql("t.user_id", tenant="tn")} AS role, t.application_id,
               tp.enabled, tp.scopes, tp.noauth
          FROM public.{Tenant._meta.db_table} tn
          LEFT JOIN {{tenant}}.{token} t ON t.token_checksum = %s
          LEFT JOIN {{tenant}}.{app} a ON a.id = t.application_id
          LEFT JOIN {{tenant}}.{policy} tp ON tp.tool_name = %s
         WHERE tn.schema_name = %s
    """)  # noqa: S608 (table names come from model metadata, values are parameters)


BEARER = _bearer_statement()


def bearer_row(checksum: str | None, tool_name: str, schema_name: str) -> tuple[Any, ...] | None:
    """Mirrored by ``BEARER`` (run in the tenant's schema): the same row, read through the ORM."""
    tenant = Tenant.objects.filter(schema_name=schema_name).values_list(*TENANT_FIELDS).first()
    if tenant is None:
        return None
    tenant_id = tenant[TENANT_FIELDS.index("id")]
    found = AccessToken.objects.select_related("application").filter(token_checksum=checksum).first()
    token: tuple[Any, ...] = (None,) * 8
    if found is not None:
        role = active_roles(tenant_id).filter(user_id=found.user_id).values_list("role", flat=True).first()
        client_id = found.application.client_id if found.application_id else None
        application = found.application_id
        token = (found.pk, found.user_id, found.scope, found.expires, found.resource, client_id, role, application)
    policy = ToolPolicy.objects.filter(tool_name=tool_name).values_list("enabled", "scopes", "noauth").first()
    return (*tenant, *token, *(policy or (None, None, None)))


# --- the idempotency record (``mcp_tools.idempotency``) ------------------------------------------------

_RECORD = IdempotencyRecord._meta.db_table
_SCOPE = "user_id = %s AND client_id = %s AND tool_name = %s AND key = %s"
SCOPE_FIELDS = ("user_id", "client_id", "tool_name", "key")
FOUND_FIELDS = ("id", "arguments_hash", "state", "result", "created_at", "updated_at")

CLAIM = f"""
    INSERT INTO {_RECORD} (user_id, client_id, tool_name, key, arguments_hash, state, created_at, updated_at)
    VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s)
    ON CONFLICT (user_id, client_id, tool_name, key) DO NOTHING
    RETURNING id
"""  # noqa: S608 (the table name comes from model metadata, values are parameters)


def claim(scope: list[Any], digest: str, now: datetime) -> int | None:
    """Mirrored by ``CLAIM`` (which does it in one statement, waiting on the unique index for a
    concurrent claim): a pending record under the scope unless one is there; its id, or None."""
    if IdempotencyRecord.objects.filter(**dict(zip(SCOPE_FIELDS, scope, strict=True))).exists():
        return None
    record = IdempotencyRecord.objects.create(
        **dict(zip(SCOPE_FIELDS, scope, strict=True)),
        arguments_hash=digest,
        state=IdempotencyRecord.State.PENDING,
        created_at=now,
        updated_at=now,
    )
    return record.pk


FIND = f"SELECT {', '.join(FOUND_FIELDS)} FROM {_RECORD} WHERE {_SCOPE} FOR UPDATE"  # noqa: S608


def find(scope: list[Any]) -> QuerySet:
    """Mirrored by ``FIND``: the record under the scope, locked."""
    return (
        IdempotencyRecord.objects.select_for_update()
        .filter(**dict(zip(SCOPE_FIELDS, scope, strict=True)))
        .values_list(*FOUND_FIELDS)
    )


DONE = f"UPDATE {_RECORD} SET state = 'done', result = %s, updated_at = %s WHERE id = %s"  # noqa: S608


def done(record_id: int, stored: str, now: datetime) -> int:
    """Mirrored by ``DONE``, which takes the result as the JSON text already written."""
    return IdempotencyRecord.objects.filter(pk=record_id).update(
        state=IdempotencyRecord.State.DONE, result=json.loads(stored), updated_at=now
    )


DELETE = f"DELETE FROM {_RECORD} WHERE id = %s"  # noqa: S608


def delete(record_id: int) -> int:
    """Mirrored by ``DELETE`` (the ORM's ``delete()`` would first collect the row for signals)."""
    deleted, _ = IdempotencyRecord.objects.filter(pk=record_id).delete()
    return deleted
