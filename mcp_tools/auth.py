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
from django.http import HttpRequest
from django.utils import timezone

from declarations.principal import Principal
from declarations.scopes import admin_only_scopes, base_scopes
from mcp_tools.challenges import AuthClass, AuthFailure
from mcp_tools.protocol import Answered
from mcp_tools.statements import BEARER, TENANT_FIELDS
from oauth.issuer import mcp_resource
from oauth.models import ChallengeChannel
from pgtenancy.prepared import fetch_prepared
from tenants.models import Membership, Tenant
from tenants.routing import confirm_tenant
from tenants.selectors import tenant_by_slug


@dataclass(frozen=True)
class Caller:
    principal: Principal
    channel: str  # a ChallengeChannel value
    # the tenant's matrix row for the tool being called, read in the same query (None: no row)
    tool_policy: tuple[bool, str, bool] | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.principal.user_id is None


def bearer_token(request: HttpRequest) -> str | None:
    """The bearer token of the ``Authorization`` header (None: no bearer credentials). Read once per
    request, by the view, which hands the value on."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def admit(request: HttpRequest, token: str | None, tool_name: str | None = None) -> Caller:
    """The caller, from one statement (``mcp_tools.statements.BEARER``): the tenant row as it is now,
    handed to routing (``tenants.routing.confirm_tenant``), which refuses a deactivated or deleted
    tenant before anything else (raised as ``Answered``); the token's row when there is one; for
    ``tools/call``, the matrix row of ``tool_name``. Without a token: the anonymous caller, with that
    matrix row."""
    checksum = hashlib.sha256(token.encode()).hexdigest() if token is not None else None
    slug = request.tenant.schema_name
    try:
        rows = fetch_prepared(BEARER, [checksum, tool_name or "", slug])
    except ProgrammingError:
        if connection.in_atomic_block:
            raise
        # a tenant deleted, schema and all, since routing cached its identity: its tables are gone too
        gone = tenant_by_slug(slug)
        refusal = confirm_tenant(request, gone)
        if refusal is None:
            raise
        raise Answered(refusal) from None
    row = rows[0] if rows else None
    fresh = Tenant.from_db(DEFAULT_DB_ALIAS, TENANT_FIELDS, row[: len(TENANT_FIELDS)]) if row else None
    refusal = confirm_tenant(request, fresh)
    if refusal is not None:
        raise Answered(refusal)
    tenant = request.tenant  # the fresh row
    token_id, user_id, scope, expires, resource, client_id, role, channel, enabled, scopes, noauth = row[
        len(TENANT_FIELDS) :
    ]
    tool_policy = (enabled, scopes, noauth) if enabled is not None else None
    if token is None:  # the anonymous caller
        principal = Principal(None, tenant.pk, tenant.slug, None, frozenset(), uuid.uuid4().hex)
        return Caller(principal, ChallengeChannel.HTTP, tool_policy)
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
    return Caller(principal, channel or ChallengeChannel.HTTP, tool_policy)
