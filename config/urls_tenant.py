"""URLs inside one tenant: served under ``/t/<slug>/`` and, when configured, at a tenant domain's root."""

from django.conf import settings
from django.urls import include, path

from accounts.views import GatedLoginView, TenantLogoutView
from mcp_tools.views import mcp_endpoint
from tenants.admin_site import tenant_admin_site
from tenants.forms import MembershipLoginForm
from tenants.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("mcp", mcp_endpoint, name="mcp"),
    path("login/", GatedLoginView.as_view(form_class=MembershipLoginForm), name="login"),
    path("logout/", TenantLogoutView.as_view(), name="logout"),
    path("admin/", tenant_admin_site.urls),
    path("connections/", include("connectors.urls")),
    path("api/connections/", include("connectors.api_urls")),
    path("api/crm/", include("crm.api_urls")),  # the CRM read API (audience H/t/<slug>/api, crm.read)
    path("", include("oauth.urls")),
]

if settings.BENCH_VIEWS:  # the benchmark's DRF + DOT baseline (bench/drf_baseline.py); never on in production
    urlpatterns += [path("", include("bench.drf_baseline"))]
