"""URLs inside one tenant: served under ``/t/<slug>/`` and, when configured, at a tenant domain's root."""

from django.conf import settings
from django.urls import include, path

from accounts.views import TenantLogoutView
from identity.views import TenantLoginView
from mcp_tools.views import mcp_endpoint
from tenants.admin_site import tenant_admin_site
from tenants.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("mcp", mcp_endpoint, name="mcp"),
    # the membership gate with the tenant's SSO policy, and its "Sign in with NAME" buttons (identity)
    path("login/", TenantLoginView.as_view(), name="login"),
    path("logout/", TenantLogoutView.as_view(), name="logout"),
    path("admin/", tenant_admin_site.urls),
    path("connections/", include("connectors.urls")),
    path("api/connections/", include("connectors.api_urls")),
    path("api/crm/", include("crm.api_urls")),  # the CRM read API (audience H/t/<slug>/api, crm.read)
    path("", include("identity.urls")),  # sso/... and scim/v2/... (enterprise identity)
    path("account/", include("portal.urls")),  # the member's account page (AI clients with access, sessions)
    path("", include("oauth.urls")),
]

if settings.BENCH_VIEWS:  # the benchmark's DRF + DOT baseline (bench/drf_baseline.py); never on in production
    urlpatterns += [path("", include("bench.drf_baseline"))]
