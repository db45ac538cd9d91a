"""The resource-server check: bearer token -> principal, in one query.

The tenant row as it is *now* (routing left the active check to this statement on ``/mcp``:
``tenants.routing.confirm_tenant``), the token row (by SHA-256 checksum: tokens are stored hashed),
its client and the user's current role in this tenant come back together, with the tenant matrix row
of the tool being called; expiry and audience are checked in memory. A token minted by another tenant
does not exist in this schema at all. The client's challenge channel is read only for a refused
``tools/call`` (``oauth.selectors.challenge_channel_of``).

``bearer_statement`` runs the statement; the view hands its tenant row to routing, which refuses a
deactivated or deleted tenant before any token check; ``admit`` then checks the token. Both read the
request as the view derived it (``mcp_tools.edge.Edge``), never the ``HttpRequest``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connection
from django.utils import timezone

from declarations.principal import Principal
from declarations.scopes import admin_only_scopes, base_scopes
from mcp_tools.challenges import AuthClass, AuthFailure
from mcp_tools.edge import Edge
from mcp_tools.statements import BEARER, TENANT_FIELDS
from pgtenancy.prepared import fetch_prepared
from tenants.models import Membership, Tenant
from tenants.selectors import tenant_by_slug


@dataclass(frozen=True)
class Statement:
    """The bearer statement's answer: the tenant row as it is now (None: gone), for routing to
    confirm (``tenants.routing.confirm_tenant``), and the token's part of the row. ``error``: the
    statement failed because the tenant's schema is gone, raised by ``admit`` unless routing refuses
    the tenant first."""

    tenant: Tenant | None
    row: tuple[Any, ...] | None = None
    error: ProgrammingError | None = None


@dataclass(frozen=True)
class Caller:
    principal: Principal
    application_id: int | None  # the token's client (None: anonymous), whose channel a refusal reads
    tenant: Tenant  # the tenant row, as the bearer statement read it
    # the tenant's matrix row for the tool being called, read in the same query (None: no row)
    tool_policy: tuple[bool, str, bool] | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.principal.user_id is None


def bearer_token(authorization: str) -> str | None:
    """The bearer token of an ``Authorization`` header's value (None: no bearer credentials)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def bearer_statement(edge: Edge) -> Statement:
    """One statement (``mcp_tools.statements.BEARER``): the tenant row as it is now, the token's row
    when there is one, and for ``tools/call`` the matrix row of the tool being called."""
    checksum = hashlib.sha256(edge.token.encode()).hexdigest() if edge.token is not None else None
    try:
        rows = fetch_prepared(BEARER, [checksum, edge.incoming.tool_name or "", edge.tenant_slug])
    except ProgrammingError as error:
        if connection.in_atomic_block:
            raise
        # a tenant deleted, schema and all, since routing cached its identity: its tables are gone too
        return Statement(tenant_by_slug(edge.tenant_slug), None, error)
    if not rows:
        return Statement(None)
    row = rows[0]
    fresh = Tenant.from_db(DEFAULT_DB_ALIAS, TENANT_FIELDS, row[: len(TENANT_FIELDS)])
    return Statement(fresh, row[len(TENANT_FIELDS) :])


def admit(statement: Statement, edge: Edge) -> Caller:
    """The caller, from the bearer statement of a tenant routing has confirmed: the token's row when
    there is one (exists, unexpired, this audience, a user who is a member); without a token, the
    anonymous caller. Either carries the matrix row of the tool being called."""
    if statement.error is not None:
        raise statement.error
    tenant = statement.tenant  # a row: routing refused the tenant otherwise
    token_id, user_id, scope, expires, resource, client_id, role, application, enabled, scopes, noauth = statement.row
    tool_policy = (enabled, scopes, noauth) if enabled is not None else None
    if edge.token is None:  # the anonymous caller
        principal = Principal(None, tenant.pk, tenant.slug, None, frozenset(), edge.request_id)
        return Caller(principal, None, tenant, tool_policy)
    if token_id is None:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token is invalid or has been revoked", base_scopes())
    subject = (user_id, client_id)  # who a refusal below concerns (mcp_tools.observe)
    if expires <= timezone.now():
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token has expired", base_scopes(), subject=subject)
    # RFC 8707: the token must name exactly this MCP endpoint; an empty audience is not "anything"
    audience = json.loads(resource) if isinstance(resource, str) else (resource or [])
    if audience != [edge.resource]:
        raise AuthFailure(
            AuthClass.INVALID_TOKEN, "The access token was not issued for this resource", base_scopes(), subject=subject
        )
    if user_id is None:
        raise AuthFailure(
            AuthClass.INVALID_TOKEN, "The access token does not represent a user", base_scopes(), subject=subject
        )
    if role is None:
        raise AuthFailure(AuthClass.TENANT_MISMATCH, "The user is not an active member of this tenant", subject=subject)
    granted = frozenset(scope.split())
    if role != Membership.Role.ADMIN:
        granted -= admin_only_scopes()  # admin-only scopes count only while the user is still an admin
    principal = Principal(
        user_id=user_id,
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        client_id=client_id,
        scopes=granted,
        request_id=edge.request_id,
    )
    return Caller(principal, application, tenant, tool_policy)
