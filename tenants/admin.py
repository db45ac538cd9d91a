"""The platform admin's tenants, domains and memberships. Whatever must revoke tokens goes through
``tenants.services``: unticking ``Tenant.is_active`` calls ``deactivate_tenant``, unticking
``Membership.is_active`` calls ``end_membership``, and the raw deletes that would skip them are
replaced by actions that call the services. The same goes for users: unticking ``User.is_active``
calls ``deactivate_user`` (every membership ended), and a user cannot be deleted (the delete would
cascade into tenant-schema tables the public schema does not have, and skip the revocations)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.utils.translation import ngettext

from accounts.admin import UserAdmin
from tenants.models import Domain, Membership, Tenant
from tenants.services import deactivate_tenant, deactivate_user, end_membership


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
    actions = ("deactivate",)

    def get_readonly_fields(self, request, obj=None):
        # the slug is the schema name: it is fixed once the schema exists
        return (*self.readonly_fields, "schema_name") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        # the schema (and its tokens) outlives the row, and a tenant re-created under the same slug
        # would find them again: deactivate instead
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change and "is_active" in form.changed_data and not obj.is_active:
            obj.is_active = True  # the service flips it, revokes the tokens and records the time
            super().save_model(request, obj, form, change)
            deactivate_tenant(slug=obj.schema_name)
            obj.refresh_from_db()
            return
        if change and "is_active" in form.changed_data and obj.is_active:
            obj.deactivated_at = None  # re-activated; revoked tokens stay revoked
        super().save_model(request, obj, form, change)

    @admin.action(description="Deactivate selected tenants (revokes their tokens)")
    def deactivate(self, request, queryset) -> None:
        done = sum(deactivate_tenant(slug=tenant.schema_name)[1].changed for tenant in queryset)
        self.message_user(
            request, ngettext("Deactivated %d tenant.", "Deactivated %d tenants.", done) % done, messages.SUCCESS
        )


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
    actions = ("end_selected",)

    def get_readonly_fields(self, request, obj=None):
        # moving a membership to another user or tenant would end it without revoking anything
        return (*self.readonly_fields, "user", "tenant") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        # a deleted row skips end_membership (no revocation) and loses the record: end it instead
        return False

    def save_model(self, request, obj, form, change) -> None:
        # ending a membership goes through the service, so its tokens are revoked like from the CLI
        if change and "is_active" in form.changed_data and not obj.is_active:
            obj.is_active = True
            super().save_model(request, obj, form, change)
            end_membership(membership=obj)
        else:
            super().save_model(request, obj, form, change)

    @admin.action(description="End selected memberships (revokes their tokens)")
    def end_selected(self, request, queryset) -> None:
        done = sum(end_membership(membership=membership) for membership in queryset)
        self.message_user(
            request, ngettext("Ended %d membership.", "Ended %d memberships.", done) % done, messages.SUCCESS
        )


@admin.register(get_user_model())
class PlatformUserAdmin(UserAdmin):
    actions = ("deactivate_selected",)

    def has_delete_permission(self, request, obj=None) -> bool:
        # memberships, tokens, consents and audit rows refer to the user from every tenant's schema:
        # deactivate instead, which ends the memberships and so revokes the tokens
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change and "is_active" in form.changed_data and not obj.is_active:
            obj.is_active = True  # the service flips it, together with the memberships
            super().save_model(request, obj, form, change)
            deactivate_user(user=obj)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Deactivate selected users (ends their memberships, revokes their tokens)")
    def deactivate_selected(self, request, queryset) -> None:
        ended = sum(deactivate_user(user=user) for user in queryset)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("Deactivated %(users)d user", "Deactivated %(users)d users", count) % {"users": count}
            + ngettext(" (%(ended)d membership ended).", " (%(ended)d memberships ended).", ended) % {"ended": ended},
            messages.SUCCESS,
        )
