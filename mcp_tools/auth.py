"""The resource-server check: bearer token -> principal, in one query.

The token row (by SHA-256 checksum: tokens are stored hashed), its client and whether its user still
holds an active membership of this tenant come back together; expiry and audience are checked in
memory. A token minted by another tenant does not exist in this tenant's schema at all.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import AccessToken

from mcp_tools.challenges import AuthClass, AuthFailure
from mcp_tools.principal import Principal
from oauth.issuer import mcp_resource
from oauth.models import ChallengeChannel, ClientProfile
from oauth.scopes import ADMIN_ONLY_SCOPES, BASE_SCOPES
from tenants.models import Membership, Tenant


@dataclass(frozen=True)
class Caller:
    principal: Principal
    channel: str  # a ChallengeChannel value


def bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def anonymous(tenant: Tenant) -> Caller:
    principal = Principal(None, tenant.pk, tenant.slug, None, frozenset(), uuid.uuid4().hex)
    return Caller(principal, ChallengeChannel.HTTP)


def authenticate(request: HttpRequest, tenant: Tenant, raw_token: str) -> Caller:
    checksum = hashlib.sha256(raw_token.encode()).hexdigest()
    member = Membership.objects.filter(
        user_id=OuterRef("user_id"), tenant_id=tenant.pk, is_active=True, user__is_active=True
    )
    channel = ClientProfile.objects.filter(application_id=OuterRef("application_id")).values("challenge_channel")[:1]
    token = (
        AccessToken.objects.filter(token_checksum=checksum)
        .select_related("application")
        .only("id", "user_id", "scope", "expires", "resource", "application__client_id")
        .annotate(is_member=Exists(member), is_admin=Exists(member.filter(role=Membership.Role.ADMIN)), channel=channel)
        .first()
    )
    if token is None:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token is invalid or has been revoked", BASE_SCOPES)
    if token.expires <= timezone.now():
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token has expired", BASE_SCOPES)
    # RFC 8707: the token must name exactly this MCP endpoint; an empty audience is not "anything"
    if list(token.resource or []) != [mcp_resource(request)]:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token was not issued for this resource", BASE_SCOPES)
    if token.user_id is None:
        raise AuthFailure(AuthClass.INVALID_TOKEN, "The access token does not represent a user", BASE_SCOPES)
    if not token.is_member:
        raise AuthFailure(AuthClass.TENANT_MISMATCH, "The user is not an active member of this tenant")
    principal = Principal(
        user_id=token.user_id,
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        client_id=token.application.client_id if token.application_id else None,
        # admin-only scopes count only while the user is still an admin of the tenant
        scopes=frozenset(token.scope.split()) - (frozenset() if token.is_admin else ADMIN_ONLY_SCOPES),
        request_id=uuid.uuid4().hex,
    )
    return Caller(principal, token.channel or ChallengeChannel.HTTP)
