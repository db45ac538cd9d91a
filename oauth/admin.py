"""OAuth tables belong to tenant schemas, so they are administered in the tenant admin only.

DOT registers its models on the default (platform, public-schema) admin site, where their tables do
not exist; they move to the tenant admin here, reusing DOT's admin classes (which mask tokens and
codes), with permissions from the tenant role.
"""

from __future__ import annotations

from django.contrib import admin
from oauth2_provider import admin as dot_admin
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from oauth.models import ClientProfile, ConsentGrant
from tenants.admin_site import TenantModelAdmin, is_tenant_admin, tenant_admin_site

for model in (Application, AccessToken, Grant, IDToken, RefreshToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class ClientProfileInline(admin.StackedInline):
    model = ClientProfile
    can_delete = False
    fields = ("application_type", "challenge_channel", "is_resource_server", "software_id", "last_used_at")
    readonly_fields = ("software_id", "last_used_at")

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)


class ApplicationAdmin(TenantModelAdmin, dot_admin.application_admin_class):
    inlines = (ClientProfileInline,)


class AccessTokenAdmin(TenantModelAdmin, dot_admin.access_token_admin_class):
    pass


class RefreshTokenAdmin(TenantModelAdmin, dot_admin.refresh_token_admin_class):
    pass


class ConsentGrantAdmin(TenantModelAdmin):
    list_display = ("user", "application", "scope", "updated_at")


tenant_admin_site.register(Application, ApplicationAdmin)
tenant_admin_site.register(AccessToken, AccessTokenAdmin)
tenant_admin_site.register(RefreshToken, RefreshTokenAdmin)
tenant_admin_site.register(ConsentGrant, ConsentGrantAdmin)
