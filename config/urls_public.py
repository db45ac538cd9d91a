"""URLs of the public site (no tenant): platform admin, health, and the host-root well-known forms."""

from django.contrib import admin
from django.urls import path

from tenants.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
