"""The base of every tenant REST API view (DRF), ``H/t/<slug>/api/...``.

Callers: a signed-in member (session, CSRF on writes) or a platform bearer token issued by this
tenant's authorization server for this tenant's API (RFC 8707 audience exactly ``H/t/<slug>/api``;
a token for the MCP endpoint is refused here, and an API token is refused at ``/mcp``). Either way
the user must be an active member now. A token also needs one of the view's ``required_scopes``
(403 ``insufficient_scope`` with a ``WWW-Authenticate`` challenge otherwise); admin-only scopes count
only while the user is a tenant admin.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from oauth2_provider.contrib.rest_framework import OAuth2ProtectedResourceAuthentication
from oauth2_provider.www_authenticate import build_bearer_challenge
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from declarations.scopes import admin_only_scopes
from tenants.resources import api_resource, api_resource_metadata_url
from tenants.selectors import active_membership

# every scope some API view accepts (the API's RFC 9728 ``scopes_supported``), filled by the views
API_SCOPES: set[str] = set()


class TenantAPIAuthentication(OAuth2ProtectedResourceAuthentication):
    """DOT's bearer authentication (token lookup, expiry, DOT's RFC 8707 prefix check), then the
    platform's exact audience rule: the token names this tenant's API and nothing else (an empty
    audience, which DOT treats as unrestricted, is refused too)."""

    www_authenticate_realm = "api"

    def get_resource_metadata_url(self, request: Request) -> str:
        return api_resource_metadata_url(request)

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if list(token.resource or []) != [api_resource(request)]:
            request.oauth2_error = OrderedDict(
                [("error", "invalid_token"), ("error_description", "The access token was not issued for this API")]
            )
            return None
        return user, token


class InsufficientScope(APIException):
    status_code = 403
    default_code = "insufficient_scope"

    def __init__(self, request: Request, needed: tuple[str, ...]) -> None:
        super().__init__({"error": "insufficient_scope", "scope": " ".join(needed)})
        granted = token_scopes(request) or set()
        self.auth_header = build_bearer_challenge(
            request,
            oauth2_error=OrderedDict(
                [
                    ("error", "insufficient_scope"),
                    ("error_description", f"this API needs one of: {', '.join(needed)}"),
                    ("scope", " ".join(sorted(granted | {needed[0]}))),
                ]
            ),
            realm=TenantAPIAuthentication.www_authenticate_realm,
            resource_metadata_url=api_resource_metadata_url(request),
        )


def token_scopes(request: Request) -> set[str] | None:
    """The bearer token's scopes (admin-only ones only while the user is an admin); None for a session."""
    token = request.auth
    if token is None or not hasattr(token, "scope"):
        return None
    scopes = set(token.scope.split())
    membership = getattr(request, "membership", None)
    if membership is None or not membership.is_admin:
        scopes -= admin_only_scopes()
    return scopes


class ActiveMember(BasePermission):
    """An active member of this tenant; a token also needs one of the view's ``required_scopes``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        membership = active_membership(user.pk, request.tenant.pk)
        if membership is None:
            return False
        request.membership = membership
        scopes = token_scopes(request)
        needed = tuple(view.required_scopes)
        if scopes is not None and not set(needed) & scopes:
            raise InsufficientScope(request, needed)
        return True


class TenantAPIView(APIView):
    """Subclasses set ``required_scopes`` (a token needs at least one of them)."""

    authentication_classes = [TenantAPIAuthentication, SessionAuthentication]  # bearer first: 401 + challenge
    permission_classes = [ActiveMember]
    required_scopes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        API_SCOPES.update(cls.required_scopes)
