"""RFC 7591 dynamic client registration, open to anonymous clients under a policy.

DOT's view does the registration; in front of it the platform rate-limits per tenant and address,
and checks redirect URIs against ``application_type`` (RFC 8252 / OpenID registration): ``native``
clients may use ``https`` or loopback ``http`` on any port, ``web`` clients ``https`` only. No
fragments, no wildcards. After it, the platform records the client's profile and completes the
response with the RFC 7591 fields DOT leaves out.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.models import Application
from oauth2_provider.views.dynamic_client_registration import DynamicClientRegistrationView

from oauth.models import ChallengeChannel, ClientProfile
from oauth.ratelimit import hit
from tenants.http import client_address

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
ALLOWED_GRANT_TYPES = {"authorization_code", "refresh_token"}


def _error(error: str, description: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": error, "error_description": description}, status=status)


def redirect_uri_problem(uri: str, application_type: str) -> str | None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"{uri!r} is not a URI"
    if parts.fragment or "#" in uri:
        return "redirect URIs must not contain a fragment"
    if "*" in uri:
        return "redirect URIs must be exact (no wildcards)"
    if parts.username or parts.password:
        return "redirect URIs must not contain user information"
    if not parts.hostname:
        return f"{uri!r} has no host"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        if application_type != "native":
            return "loopback http redirect URIs are for native clients (application_type 'native')"
        return None
    return "redirect URIs must use https, or http on a loopback address (RFC 8252)"


def is_loopback_http(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def is_private_use_scheme(uri: str) -> bool:
    """RFC 8252 §7.1: a reverse-domain scheme such as ``com.example.app:/cb``."""
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    return "." in scheme


def infer_application_type(uris: list[str]) -> str:
    """OpenID registration defaults ``application_type`` to ``web``, but MCP clients that run on the
    user's machine (TS SDK 1.x, the Inspector, IDE clients) register loopback redirects without
    saying ``native``. Such redirect URIs only make sense for a native client, so infer it."""
    if any(is_loopback_http(u) or is_private_use_scheme(u) for u in uris):
        return ClientProfile.ApplicationType.NATIVE
    return ClientProfile.ApplicationType.WEB


def default_challenge_channel(metadata: dict) -> str:
    """Clients that declare the Apps SDK tool-result challenge form get it; everyone else the HTTP form."""
    declared = metadata.get("mcp_challenge_channel") or metadata.get("challenge_channel")
    if declared in ChallengeChannel.values:
        return declared
    return ChallengeChannel.HTTP


class PolicyRegistrationView(DynamicClientRegistrationView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        limit, window = settings.OAUTH_DCR_RATE_LIMIT
        address = client_address(request)  # honours BEHIND_PROXY (issue 8, logins)
        allowed, retry_after = hit(f"dcr:{request.tenant.schema_name}:{address}", limit, window)
        if not allowed:
            response = _error("rate_limited", "too many client registrations; try again later", status=429)
            response["Retry-After"] = str(retry_after)
            return response
        try:
            metadata = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return _error("invalid_client_metadata", "the body must be a JSON object")
        if not isinstance(metadata, dict):
            return _error("invalid_client_metadata", "the body must be a JSON object")
        uris = metadata.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            return _error("invalid_redirect_uri", "redirect_uris must be a non-empty array of strings")
        application_type = metadata.get("application_type") or infer_application_type(uris)
        if application_type not in ClientProfile.ApplicationType.values:
            return _error("invalid_client_metadata", "application_type must be 'web' or 'native'")
        grant_types = metadata.get("grant_types", ["authorization_code"])
        if (
            not isinstance(grant_types, list)
            or "authorization_code" not in grant_types
            or not set(grant_types) <= ALLOWED_GRANT_TYPES
        ):
            return _error("invalid_client_metadata", "grant_types must be authorization_code (and refresh_token)")
        for uri in uris:
            problem = redirect_uri_problem(uri, application_type)
            if problem:
                return _error("invalid_redirect_uri", problem)

        response = super().post(request, *args, **kwargs)
        if response.status_code != 201:
            return response
        body = json.loads(response.content)
        application = Application.objects.get(client_id=body["client_id"])
        ClientProfile.objects.create(
            application=application,
            application_type=application_type,
            challenge_channel=default_challenge_channel(metadata),
            software_id=str(metadata.get("software_id", ""))[:255],
        )
        body["application_type"] = application_type
        body["client_id_issued_at"] = int(time.time())
        if "client_secret" in body:
            body["client_secret_expires_at"] = 0
            body["token_endpoint_auth_method"] = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        if isinstance(metadata.get("scope"), str):
            body["scope"] = metadata["scope"]
        return JsonResponse(body, status=201)
