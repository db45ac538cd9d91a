"""The authorization server's endpoints inside a tenant (namespace ``oauth2_provider``, as DOT's
metadata views expect)."""

from django.urls import path
from oauth2_provider import views as dot_views

from oauth.views.authorize import TenantAuthorizationView
from oauth.views.introspect import ConfidentialIntrospectView
from oauth.views.metadata import TenantAPIResourceMetadataView, TenantResourceMetadataView, TenantServerMetadataView
from oauth.views.registration import PolicyRegistrationManagementView, PolicyRegistrationView
from oauth.views.token import PlatformTokenView

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", TenantAuthorizationView.as_view(), name="authorize"),
    path("token/", PlatformTokenView.as_view(), name="token"),
    path("revoke_token/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", ConfidentialIntrospectView.as_view(), name="introspect"),
    path("register/", PolicyRegistrationView.as_view(), name="dcr-register"),
    path(
        "register/<str:client_id>/",
        PolicyRegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
    # metadata under the tenant prefix (and at the root of a tenant's own domain)
    path(".well-known/oauth-authorization-server", TenantServerMetadataView.as_view(), name="oauth-server-metadata"),
    path(".well-known/openid-configuration", TenantServerMetadataView.as_view(), name="openid-configuration"),
    path(
        ".well-known/oauth-protected-resource/mcp", TenantResourceMetadataView.as_view(), name="oauth-resource-metadata"
    ),
    path(".well-known/oauth-protected-resource", TenantResourceMetadataView.as_view()),
    path(
        ".well-known/oauth-protected-resource/api",
        TenantAPIResourceMetadataView.as_view(),
        name="oauth-api-resource-metadata",
    ),
]
