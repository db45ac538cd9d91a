"""URLs of the public site (no tenant): platform admin, health, and the host-root well-known forms."""

from django.contrib import admin
from django.urls import path

from oauth.views.public import api_resource_metadata, resource_metadata, server_metadata
from observability.views import metrics_view
from tenants.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus, METRICS_TOKEN bearer (observability)
    path(".well-known/oauth-authorization-server/t/<slug:slug>", server_metadata),
    path(".well-known/openid-configuration/t/<slug:slug>", server_metadata),
    path(".well-known/oauth-protected-resource/t/<slug:slug>/mcp", resource_metadata),
    path(".well-known/oauth-protected-resource/t/<slug:slug>/api", api_resource_metadata),  # the REST API
    path(".well-known/oauth-protected-resource/t/<slug:slug>", resource_metadata),
]
