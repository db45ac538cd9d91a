"""RFC 7591 dynamic client registration, open to anonymous clients under a policy, and RFC 7592
updates under the same policy.

DOT's views do the registration and the update; in front of them the platform rate-limits
registrations per tenant and address and applies ``oauth.client_policy`` (the policy CIMD documents
pass too). After them, the platform records or updates the client's profile (``oauth.services``) in
the same transaction and completes the response with the RFC 7591 fields DOT leaves out.

An update (``PUT /register/<client_id>/``) is authenticated by DOT's registration access token
first, then checked like a registration; it may not change the client's type
(``token_endpoint_auth_method`` ``none`` vs a secret), since DOT would not issue a secret for it.

The JWT bearer grant (ID-JAGs, ``oauth.id_jag``) is accepted for confidential clients of a tenant that
trusts an identity provider's ID-JAGs. DOT's registration knows one grant type per application and
not this one, so the body DOT reads lists the others only; the client's profile records the grant
(``ClientProfile.jwt_bearer_grant``) and the answer lists it again.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.models import Application
from oauth2_provider.views.dynamic_client_registration import (
    DynamicClientRegistrationManagementView,
    DynamicClientRegistrationView,
)

from identity.selectors import trusts_id_jags
from oauth.client_blocks import refusing_block
from oauth.client_policy import ClientFacts, ClientMetadataError, check_client_metadata, offered_grant_types
from oauth.grant_types import JWT_BEARER
from oauth.services import create_client_profile, update_client_profile
from tenants.http import address_bucket
from tenants.ratelimit import hit


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def _checked_metadata(request: HttpRequest) -> tuple[dict, ClientFacts] | JsonResponse:
    """Parse the body and apply the client policy; the error response on refusal."""
    try:
        metadata = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error("invalid_client_metadata", "the body must be a JSON object")
    try:
        jwt_bearer_allowed = (
            isinstance(metadata, dict) and _client_type(metadata) == "confidential" and trusts_id_jags()
        )
        facts = check_client_metadata(metadata, jwt_bearer_allowed=jwt_bearer_allowed)
    except ClientMetadataError as exc:
        return _error(exc.error, exc.description)
    # the tenant's kill switch: a disabled software_id or redirect host does not come back by registering
    if refusing_block(client_id="", cimd=False, software_id=facts.software_id, redirect_uris=facts.redirect_uris):
        return _error("invalid_client_metadata", "this client is disabled in this tenant")
    if facts.jwt_bearer:  # DOT's view reads the body again: without the grant it does not know
        request._body = json.dumps({**metadata, "grant_types": offered_grant_types(metadata)}).encode()
    return metadata, facts


def _client_type(metadata: dict) -> str:
    return "public" if metadata.get("token_endpoint_auth_method", "client_secret_basic") == "none" else "confidential"


class PolicyRegistrationView(DynamicClientRegistrationView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        limit, window = settings.OAUTH_DCR_RATE_LIMIT
        address = address_bucket(request)  # BEHIND_PROXY honoured; an IPv6 client's /64
        allowed, retry_after = hit(f"dcr:{request.tenant.schema_name}:{address}", limit, window)
        if not allowed:
            response = _error("rate_limited", "too many client registrations; try again later", status=429)
            response["Retry-After"] = str(retry_after)
            return response
        checked = _checked_metadata(request)
        if isinstance(checked, JsonResponse):
            return checked
        metadata, facts = checked

        with transaction.atomic():
            response = super().post(request, *args, **kwargs)
            if response.status_code != 201:
                return response
            body = json.loads(response.content)
            application = Application.objects.get(client_id=body["client_id"])
            create_client_profile(application=application, facts=facts)
        body["application_type"] = facts.application_type
        body["client_id_issued_at"] = int(time.time())
        if facts.jwt_bearer:
            body["grant_types"] = [*body.get("grant_types", []), JWT_BEARER]
        if "client_secret" in body:
            body["client_secret_expires_at"] = 0
            body["token_endpoint_auth_method"] = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        if "scope" in metadata:
            body["scope"] = metadata["scope"]
        return JsonResponse(body, status=201)


class PolicyRegistrationManagementView(DynamicClientRegistrationManagementView):
    def put(self, request: HttpRequest, client_id: str, *args, **kwargs) -> HttpResponse:
        auth = self._authenticate_registration_request(request, client_id)
        if isinstance(auth, HttpResponse):
            return auth
        checked = _checked_metadata(request)
        if isinstance(checked, JsonResponse):
            return checked
        metadata, facts = checked
        if _client_type(metadata) != auth.application.client_type:
            return _error(
                "invalid_client_metadata",
                "token_endpoint_auth_method cannot change the client type; register a new client instead",
            )

        with transaction.atomic():
            response = super().put(request, client_id, *args, **kwargs)
            if response.status_code != 200:
                return response
            update_client_profile(application=Application.objects.get(client_id=client_id), facts=facts)
        body = json.loads(response.content)
        body["application_type"] = facts.application_type
        if facts.jwt_bearer:
            body["grant_types"] = [*body.get("grant_types", []), JWT_BEARER]
        return JsonResponse(body)
