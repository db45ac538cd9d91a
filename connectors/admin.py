"""Tenant admin for providers (the client secret is write-only) and connected accounts (read-only
status; tokens are never shown). Writes go through the services where they have rules."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest

from connectors.http import OutboundError, check_url
from connectors.models import ConnectedAccount, Provider
from tenants.admin_site import TenantModelAdmin, tenant_admin_site


class ProviderForm(forms.ModelForm):
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored secret.",
    )

    issuer = forms.URLField(required=False, max_length=500, assume_scheme="https")
    authorization_endpoint = forms.URLField(max_length=500, assume_scheme="https")
    token_endpoint = forms.URLField(max_length=500, assume_scheme="https")
    revocation_endpoint = forms.URLField(required=False, max_length=500, assume_scheme="https")
    userinfo_endpoint = forms.URLField(required=False, max_length=500, assume_scheme="https")
    mcp_endpoint = forms.URLField(required=False, max_length=500, assume_scheme="https")
    api_base_url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    scope_separator = forms.CharField(strip=False, max_length=4, initial=" ")  # a space is a valid separator

    class Meta:
        model = Provider
        fields = (
            "key",
            "display_name",
            "preset",
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "revocation_endpoint",
            "userinfo_endpoint",
            "client_id",
            "client_secret",
            "default_scopes",
            "scope_separator",
            "token_endpoint_auth_method",
            "pkce",
            "extra_authorize_params",
            "account_id_claim",
            "mcp_endpoint",
            "api_base_url",
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in (
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "revocation_endpoint",
            "userinfo_endpoint",
            "mcp_endpoint",
            "api_base_url",
        ):
            if cleaned.get(name):
                try:
                    check_url(cleaned[name])
                except OutboundError as exc:
                    self.add_error(name, f"{exc} [{exc.code}]")
        return cleaned

    def clean_client_secret(self) -> str:
        value = self.cleaned_data.get("client_secret") or ""
        if not value and self.instance.pk:
            return self.instance.client_secret  # keep the stored one
        return value


class ProviderAdmin(TenantModelAdmin):
    form = ProviderForm
    list_display = ("key", "display_name", "token_endpoint_auth_method", "pkce", "updated_at")
    search_fields = ("key", "display_name")
    readonly_fields = ("created_at", "updated_at")


class ConnectedAccountAdmin(TenantModelAdmin):
    list_display = ("provider", "user", "status", "status_reason", "external_account_label", "last_refreshed_at")
    list_filter = ("status", "provider")
    search_fields = ("external_account_id", "external_account_label", "user__email")
    readonly_fields = [f.name for f in ConnectedAccount._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are connected by their users on the connect pages

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


tenant_admin_site.register(Provider, ProviderAdmin)
tenant_admin_site.register(ConnectedAccount, ConnectedAccountAdmin)
