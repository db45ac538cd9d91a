from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest
from oauth2_provider.oauth2_backends import OAuthLibCore

from oauth.issuer import allowed_resources as tenant_resources

# The RFC 8707 resources a token issued by the current request may name: this tenant's MCP endpoint
# (the default) or its REST API, as seen from the host the client used. Set by the backend, read by
# the validator.
allowed_resources: ContextVar[tuple[str, ...]] = ContextVar("allowed_resources", default=())
# The Django request behind the token or revocation request the validator is deciding: the client
# assertion's audience (the tenant's issuer) and the audit trail's source address come from it.
current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


class TenantOAuthLibCore(OAuthLibCore):
    def create_token_response(self, request: HttpRequest):
        token = allowed_resources.set(tenant_resources(request))
        current = current_request.set(request)
        try:
            return super().create_token_response(request)
        finally:
            current_request.reset(current)
            allowed_resources.reset(token)

    def create_revocation_response(self, request: HttpRequest):
        current = current_request.set(request)
        try:
            return super().create_revocation_response(request)
        finally:
            current_request.reset(current)
