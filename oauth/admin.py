"""OAuth tables belong to tenant schemas, so they are administered in the tenant admin only.

DOT registers its models on the default (platform, public-schema) admin site, where their tables do
not exist; they move to the tenant admin here. DOT's admin classes come first in the bases, so their
deliberate refusals (no adding tokens, no raw deletes) hold; ``TenantModelAdmin`` adds the tenant-role
permissions and the member-only user fields. Tokens and consents are view-and-revoke only: the token
value and its checksum are never shown, and revoking goes through ``oauth.services``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.utils.translation import ngettext
from oauth2_provider import admin as dot_admin
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from oauth import client_blocks, services
from oauth.models import ClientBlock, ClientProfile, ConsentGrant
from tenants.admin_site import TenantModelAdmin, ViewAndRevokeAdmin, is_tenant_admin, tenant_admin_site

for model in (Application, AccessToken, Grant, IDToken, RefreshToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class ClientProfileInline(admin.StackedInline):
    model = ClientProfile
    can_delete = False
    # a CIMD client's authentication comes from its document, never from an admin
    readonly_fields = (
        "software_id",
        "last_used_at",
        "token_endpoint_auth_method",
        "signing_alg",
        "jwks_uri",
        "jwks_fetched_at",
    )
    fields = ("application_type", "challenge_channel", "is_resource_server", "jwt_bearer_grant", *readonly_fields)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_add_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_tenant_admin(request)


class ApplicationAdmin(dot_admin.application_admin_class, TenantModelAdmin):
    inlines = (ClientProfileInline,)
    actions = ("disable_clients",)

    @admin.action(description="Disable selected clients (kill switch: tokens revoked, no new authorization)")
    def disable_clients(self, request, queryset) -> None:
        client_ids = list(queryset.values_list("client_id", flat=True))
        for client_id in client_ids:
            client_blocks.disable_client(kind=ClientBlock.Kind.CLIENT_ID, value=client_id, by_user_id=request.user.pk)
        self.message_user(
            request, ngettext("Disabled %d client.", "Disabled %d clients.", len(client_ids)) % len(client_ids)
        )


class ClientBlockAdmin(TenantModelAdmin):
    """Disabled clients: adding one revokes at once (``oauth.client_blocks``), deleting one lets the
    matching clients authorize again; neither is an edit of the row itself."""

    list_display = ("kind", "value", "reason", "created_by", "created_at")
    fields = ("kind", "value", "reason")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: ClientBlock, form, change: bool) -> None:
        block, _ = client_blocks.disable_client(
            kind=obj.kind, value=obj.value, by_user_id=request.user.pk, reason=obj.reason
        )
        obj.pk = block.pk

    def delete_model(self, request, obj: ClientBlock) -> None:
        client_blocks.enable_client(block=obj, by_user_id=request.user.pk)

    def delete_queryset(self, request, queryset) -> None:
        for block in queryset:
            client_blocks.enable_client(block=block, by_user_id=request.user.pk)


def revoke_tokens_action(kind: str) -> Callable[[admin.ModelAdmin, Any, Any], None]:
    """The "revoke_tokens" action of the token admins: ``kind`` is "access" or "refresh"."""

    @admin.action(description=f"Revoke selected {kind} tokens (and their sessions)", permissions=["revoke"])
    def revoke_tokens(model_admin: admin.ModelAdmin, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        services.revoke_tokens(**{f"{kind}_token_ids": ids})
        message = ngettext("Revoked %d %s token.", "Revoked %d %s tokens.", len(ids))
        model_admin.message_user(request, message % (len(ids), kind))

    return revoke_tokens


class AccessTokenAdmin(ViewAndRevokeAdmin, dot_admin.access_token_admin_class, TenantModelAdmin):
    list_display = ("pk", "user", "application", "scope", "expires")
    fields = ("user", "application", "scope", "resource", "expires", "created", "updated")
    readonly_fields = fields
    actions = (revoke_tokens_action("access"),)


class RefreshTokenAdmin(ViewAndRevokeAdmin, dot_admin.refresh_token_admin_class, TenantModelAdmin):
    list_display = ("pk", "user", "application", "created", "revoked")
    list_filter = ("application", "revoked")
    fields = ("user", "application", "token_family", "resource", "created", "updated", "revoked")
    readonly_fields = fields
    actions = (revoke_tokens_action("refresh"),)


class ConsentGrantAdmin(ViewAndRevokeAdmin, TenantModelAdmin):
    list_display = ("user", "application", "scope", "updated_at")
    list_select_related = ("user", "application")
    fields = ("user", "application", "scope", "updated_at")
    readonly_fields = fields
    search_fields = ("application__name", "application__client_id", "user__email")
    actions = ("revoke_consents",)

    @admin.action(description="Revoke selected consents (and the tokens issued under them)", permissions=["revoke"])
    def revoke_consents(self, request, queryset) -> None:
        count = services.revoke_consents(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, ngettext("Revoked %d consent.", "Revoked %d consents.", count) % count)


tenant_admin_site.register(Application, ApplicationAdmin)
tenant_admin_site.register(AccessToken, AccessTokenAdmin)
tenant_admin_site.register(RefreshToken, RefreshTokenAdmin)
tenant_admin_site.register(ConsentGrant, ConsentGrantAdmin)
tenant_admin_site.register(ClientBlock, ClientBlockAdmin)
