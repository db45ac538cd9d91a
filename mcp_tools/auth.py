"""The resource-server check: bearer token -> principal, in one query.

The tenant row as it is *now* (routing left the active check to this statement on ``/mcp``:
``tenants.routing.confirm_tenant``), the token row (by SHA-256 checksum: tokens are stored hashed),
its client and the user's current role in this tenant come back together, with the tenant matrix row
of the tool being called; expiry and audience are checked in memory. A token minted by another tenant
does not exist in this schema at all.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from accounts.models import User
from declarations.principal import Principal
from declarations.scopes import admin_only_scopes, base_scopes
from mcp_tools.challenges import AuthClass, AuthFailure
from mcp_tools.models import ToolPolicy
from oauth.issuer import mcp_resource
from oauth.models import ChallengeChannel, ClientProfile
from pgtenancy.prepared import TenantStatement, fetch_prepared
from tenants.models import Membership, Tenant
from tenants.routing import confirm_tenant
from tenants.selectors import tenant_by_slug


@dataclass(frozen=True)
class Caller:
    principal: Principal
    channel: str  # a ChallengeChannel value
    # the tenant's matrix row for the tool being called, read in the same query (None: no row)
    tool_policy: tuple[bool, str, bool] | None = None


def bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def anonymous(tenant: Tenant) -> Caller:
    principal = Principal(None, tenant.pk, tenant.slug, None, frozenset(), uuid.uuid4().hex)
    return Caller(principal, ChallengeChannel.HTTP)


class TenantRefused(Exception):
    """The tenant is deactivated or gone: routing's own answer (404/403 ``TENANT_INACTIVE``)."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def active_role_sql(user_id_column: str, tenant_id: str = "%s") -> str:
    """The role of the user in ``user_id_column`` in the tenant given as the one parameter, NULL unless
    an active member: the SQL mirror of ``Membership.objects.active()`` (tenants.models), the
    membership, its user and its tenant all active. Change both together
    (tests/test_tenancy.py::test_auth_sql_mirrors_membership_active checks they agree). The
    subquery's own aliases are m, u and mt: ``user_id_column`` must not use them. ``tenant_id``: an
    SQL expression instead of the parameter (the bearer statement passes its tenant row's id)."""
    member, user, tenant = Membership._meta.db_table, User._meta.db_table, Tenant._meta.db_table
    return f"""(SELECT m.role FROM public.{member} m
                  JOIN public.{user} u ON u.id = m.user_id
                  JOIN public.{tenant} mt ON mt.id = m.tenant_id
                 WHERE m.user_id = {user_id_column} AND m.tenant_id = {tenant_id}
                   AND m.is_active AND u.is_active AND mt.is_active)"""  # noqa: S608 (metadata names)


_TENANT_FIELDS = [f.attname for f in Tenant._meta.concrete_fields]


def _token_query() -> TenantStatement:
    """One statement: the tenant row (always, when the slug exists: ``LEFT JOIN`` of the token), the
    token, its client, the caller's role in this tenant (NULL if not an active member:
    ``active_role_sql``), the client's challenge channel and the tool's matrix row. Written as SQL
    because this runs on every MCP request and the ORM's compilation of the equivalent
    Exists/Subquery annotations costs more than the query; prepared (``pgtenancy.prepared``) because
    PostgreSQL's planning of its eight relations costs more than executing it. The tenant's tables are
    schema-qualified, one statement per schema (``TenantStatement``), so calls that alternate between
    tenants keep each schema's plan instead of re-planning on every call."""
    token, app = AccessToken._meta.db_table, Application._meta.db_table
    profile, policy = ClientProfile._meta.db_table, ToolPolicy._meta.db_table
    tenant_columns = ", ".join(f"tn.{name}" for name in _TENANT_FIELDS)
    return TenantStatement(f"""
        SELECT {tenant_columns},
               t.id, t.user_id, t.scope, t.expires, t.resource, a.client_id,
               {active_role_sql("t.user_id", "tn.id")} AS role,
               (SELECT p.challenge_channel FROM {{tenant}}.{profile} p
                 WHERE p.application_id = t.application_id) AS channel,
               tp.enabled, tp.scopes, tp.noauth
          FROM public.{Tenant._meta.db_table} tn
          LEFT JOIN {{tenant}}.{token} t ON t.token_checksum = %s
          LEFT JOIN {{tenant}}.{app} a ON a.id = t.application_id
          LEFT JOIN {{tenant}}.{policy} tp ON tp.tool_name = %s
         WHERE tn.schema_name = %s
    """)  # noqa: S608 (table names come from model metadata, values are parameters)


TOKEN_QUERY = _token_query()


def authenticate(request: HttpRequest, raw_token: str, tool_name: str | None = None) -> Caller:
    """``tool_name``: for ``tools/call``, the tool whose matrix row to read in the same query. Raises
    ``TenantRefused`` before any token check when the tenant is deactivated or gone, as routing would."""
    checksum = hashlib.sha256(raw_token.encode()).hexdigest()
    slug = request.tenant.schema_name
    try:
        rows = fetch_prepared(TOKEN_QUERY, [checksum, tool_name or "", slug])
    except ProgrammingError:
        # a tenant deleted, schema and all, since routing cached its identity: its tables are gone too
        refusal = None if connection.in_atomic_block else confirm_tenant(request, tenant_by_slug(slug))
        if refusal is not None:
            raise TenantRefused(refusal) from None
        raise
    row = rows[0] if rows else None
    fresh = Tenant.from_db(DEFAULT_DB_ALIAS, _TENANT_FIELDS, row[: len(_TENANT_FIELDS)]) if row else None
    refusal = confirm_tenant(request, fresh)
    if refusal is not None:
        raise TenantRefused(refusal)
    tenant = request.tenant  # the fresh row
    token_id, user_id, scope, expires, resource, client_id, role, channel, enabled, scopes, noauth = row[
        len(_TENANT_FIELDS) :
    ]
    if token_id is None:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token is invalid or has been revoked", base_scopes())
    request.audit_subject = (user_id, client_id)  # who a refusal below concerns (mcp_tools.observe)
    if expires <= timezone.now():
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token has expired", base_scopes())
    # RFC 8707: the token must name exactly this MCP endpoint; an empty audience is not "anything"
    audience = json.loads(resource) if isinstance(resource, str) else (resource or [])
    if audience != [mcp_resource(request)]:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token was not issued for this resource", base_scopes())
    if user_id is None:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token does not represent a user", base_scopes())
    if role is None:
        raise AuthFailure(AuthClass.TENANT_MISMATCH, "The user is not an active member of this tenant")
    granted = frozenset(scope.split())
    if role != Membership.Role.ADMIN:
        granted -= admin_only_scopes()  # admin-only scopes count only while the user is still an admin
    principal = Principal(
        user_id=user_id,
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        client_id=client_id,
        scopes=granted,
        request_id=uuid.uuid4().hex,
    )
    tool_policy = (enabled, scopes, noauth) if enabled is not None else None
    return Caller(principal, channel or ChallengeChannel.HTTP, tool_policy)
