"""The tenant admin at ``/t/<slug>/admin/``: open to active members whose role is ``admin`` in that
tenant, and only there. Tenant-owned models register on ``tenant_admin_site`` with ``TenantModelAdmin``.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from accounts.forms import SuperuserLoginForm
from tenants.forms import TenantAdminLoginForm  # the one tenant login form (tenants.forms)
from tenants.selectors import active_membership


def is_tenant_admin(request: HttpRequest) -> bool:
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    if tenant is None or user is None or not user.is_authenticated or not tenant.is_active:
        return False
    cached = getattr(request, "_tenant_admin", None)
    if cached is None:
        membership = active_membership(user.pk, tenant.pk)
        cached = request._tenant_admin = bool(membership and membership.is_admin)
    return cached


class TenantAdminSite(admin.AdminSite):
    login_form = TenantAdminLoginForm
    site_header = "Tenant administration"
    site_title = "Tenant admin"
    index_title = "Tenant administration"

    def has_permission(self, request: HttpRequest) -> bool:
        return is_tenant_admin(request)

    def each_context(self, request: HttpRequest) -> dict[str, object]:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} — tenant administration"
        return context


class TenantModelAdmin(admin.ModelAdmin):
    """Permissions come from the tenant membership role, not Django's global permission tables."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_tenant_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_tenant_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_tenant_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_tenant_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return is_tenant_admin(request)


tenant_admin_site = TenantAdminSite(name="tenant_admin")


class PlatformAdminSite(admin.AdminSite):
    """The platform admin (public schema): superusers only."""

    site_header = "Platform administration"
    login_form = SuperuserLoginForm  # one generic error for every refusal (accounts.forms)

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_superuser)
