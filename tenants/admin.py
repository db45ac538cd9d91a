from django.contrib import admin

from tenants.models import Domain, Membership, Tenant
from tenants.services import end_membership


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("schema_name", "name", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("schema_name", "name")
    inlines = (DomainInline,)
    readonly_fields = ("created_at", "deactivated_at")

    def get_readonly_fields(self, request, obj=None):
        # the slug is the schema name: it is fixed once the schema exists
        return (*self.readonly_fields, "schema_name") if obj else self.readonly_fields


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("domain", "tenant", "is_primary")
    search_fields = ("domain",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "is_active", "created_at", "ended_at")
    list_filter = ("role", "is_active", "tenant")
    search_fields = ("user__email", "tenant__schema_name")
    autocomplete_fields = ("user",)
    readonly_fields = ("ended_at",)

    def save_model(self, request, obj, form, change) -> None:
        # ending a membership goes through the service, so its tokens are revoked like from the CLI
        if change and "is_active" in form.changed_data and not obj.is_active:
            obj.is_active = True
            super().save_model(request, obj, form, change)
            end_membership(obj)
        else:
            super().save_model(request, obj, form, change)
