"""RFC 8414 authorization-server and RFC 9728 protected-resource metadata, per tenant.

DOT's views build the documents; the platform pins the issuer and resource to the tenant's canonical
URLs (DOT derives them from the request path, which differs between the well-known forms) and adds the
fields MCP clients look for.
"""

from __future__ import annotations

import json
from importlib import import_module

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from oauth2_provider.views.metadata import OAuthProtectedResourceMetadataView, OAuthServerMetadataView

from declarations.scopes import all_scopes, base_scopes
from identity.selectors import trusts_id_jags
from oauth.grant_types import ID_JAG_PROFILE, JWT_BEARER
from oauth.issuer import api_resource, issuer, mcp_resource
from oauth.jwks import ASSERTION_ALGORITHMS
from resource_api.views import API_SCOPES

METADATA_MAX_AGE = 300


def _json(data: dict) -> JsonResponse:
    response = JsonResponse(data)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    return response


class TenantServerMetadataView(OAuthServerMetadataView):
    """Served at the RFC 8414 path-inserted form, under the tenant prefix, and at the OpenID
    configuration locations MCP clients also probe (same facts in each)."""

    def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        data = json.loads(super().get(request, *args, **kwargs).content)
        data["issuer"] = issuer(request)
        data["scopes_supported"] = sorted(all_scopes())
        data["code_challenge_methods_supported"] = ["S256"]
        data["response_types_supported"] = ["code"]
        data["grant_types_supported"] = ["authorization_code", "refresh_token"]
        if trusts_id_jags():  # enterprise-managed authorization: ID-JAGs with the JWT bearer grant (oauth.id_jag)
            data["grant_types_supported"].append(JWT_BEARER)
            data["authorization_grant_profiles_supported"] = [ID_JAG_PROFILE]
        data["response_modes_supported"] = ["query"]
        methods = ["none", "client_secret_basic", "client_secret_post"]
        if settings.OAUTH_CIMD_PRIVATE_KEY_JWT:  # CIMD clients whose document declares it (oauth.client_assertion)
            methods.append("private_key_jwt")
            data["token_endpoint_auth_signing_alg_values_supported"] = list(ASSERTION_ALGORITHMS)
            data["revocation_endpoint_auth_signing_alg_values_supported"] = list(ASSERTION_ALGORITHMS)
        data["token_endpoint_auth_methods_supported"] = methods
        data["revocation_endpoint_auth_methods_supported"] = methods
        # introspection is for confidential clients only
        data["introspection_endpoint_auth_methods_supported"] = ["client_secret_basic", "client_secret_post"]
        data["authorization_response_iss_parameter_supported"] = True
        data["client_id_metadata_document_supported"] = True
        data["resource_indicators_supported"] = True
        return _json(data)


class TenantResourceMetadataView(OAuthProtectedResourceMetadataView):
    def get_resource(self, request: HttpRequest) -> str:
        return mcp_resource(request)

    def get_authorization_servers(self, request: HttpRequest) -> list[str]:
        return [issuer(request)]

    def get_scopes_supported(self) -> list[str]:
        return list(base_scopes())

    def get_resource_name(self) -> str | None:
        tenant = getattr(self.request, "tenant", None)
        return f"{tenant.name} MCP server" if tenant else None

    def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        data = json.loads(super().get(request, *args, **kwargs).content)
        data["bearer_methods_supported"] = ["header"]
        return _json(data)


class TenantAPIResourceMetadataView(TenantResourceMetadataView):
    """RFC 9728 metadata of the tenant's REST API (``H/t/<slug>/api``), the second resource a client
    can ask tokens for (``resource=H/t/<slug>/api``)."""

    def get_resource(self, request: HttpRequest) -> str:
        return api_resource(request)

    def get_scopes_supported(self) -> list[str]:
        import_module(settings.ROOT_URLCONF)  # the tenant URLconf imports every API view, which declare them
        return sorted(API_SCOPES)

    def get_resource_name(self) -> str | None:
        tenant = getattr(self.request, "tenant", None)
        return f"{tenant.name} API" if tenant else None
