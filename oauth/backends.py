from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest
from oauth2_provider.oauth2_backends import OAuthLibCore

from oauth.issuer import allowed_resources as tenant_resources

# The RFC 8707 resources a token issued by the current request may name: this tenant's MCP endpoint
# (the default) or its REST API, as seen from the host the client used. Set by the backend, read by
# the validator.
allowed_resources: ContextVar[tuple[str, ...]] = ContextVar("allowed_resources", default=())


class TenantOAuthLibCore(OAuthLibCore):
    def create_token_response(self, request: HttpRequest):
        token = allowed_resources.set(tenant_resources(request))
        try:
            return super().create_token_response(request)
        finally:
            allowed_resources.reset(token)
