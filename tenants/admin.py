from django.contrib import admin

from tenants.models import Domain, Membership, Tenant


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
