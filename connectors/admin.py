"""Tenant admin for providers (the client secret is write-only) and connected accounts (read-only
status; tokens are never shown). Saving and deleting go through the services: a changed endpoint or
client id needs the secret again and ends the stored grants (revoked at the old endpoints), endpoints
follow ``connectors.endpoints``, deleting a provider or an account revokes its grants upstream."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from connectors import services
from connectors.endpoints import EndpointError
from connectors.errors import ConnectorError
from connectors.models import ENDPOINT_FIELDS, ConnectedAccount, Provider
from tenants.admin_site import TenantModelAdmin, tenant_admin_site


class ProviderForm(forms.ModelForm):
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=(
            "Write-only. Leave empty to keep the stored secret, except when you change the issuer, an "
            "endpoint or the client id: that ends every member's connection (revoked at the old endpoints) "
            "and needs the secret entered again."
        ),
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
            "issuer",
            *ENDPOINT_FIELDS,
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

    check: services.ProviderCheck | None = None

    @property
    def secret_entered(self) -> bool:
        return bool(self.data.get(self.add_prefix("client_secret")))

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        values = {**cleaned, "preset": self.instance.preset}
        try:
            self.check = services.check_provider(
                current=self.instance if self.instance.pk else None, values=values, secret_entered=self.secret_entered
            )
        except EndpointError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, f"{exc} [{exc.code}]")
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
    readonly_fields = (
        "preset",
        "jwks_uri",
        "authorization_response_iss_parameter_supported",
        "created_at",
        "updated_at",
    )

    def save_model(self, request: HttpRequest, obj: Provider, form: ProviderForm, change: bool) -> None:
        provider, outcome = services.save_provider(
            provider=obj,
            check=form.check,
            secret_entered=form.secret_entered,
            actor_user_id=request.user.pk,
            request=request,
        )
        obj.pk = provider.pk
        if outcome.changed:
            self.message_user(request, outcome.detail, messages.INFO)

    def delete_model(self, request: HttpRequest, obj: Provider) -> None:
        outcome = services.delete_provider(provider_id=obj.pk, actor_user_id=request.user.pk, request=request)
        self.message_user(request, outcome.detail, messages.INFO)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            self.delete_model(request, provider)


class ConnectedAccountAdmin(TenantModelAdmin):
    list_display = ("provider", "user", "status", "status_reason", "external_account_label", "last_refreshed_at")
    list_filter = ("status", "provider")
    search_fields = ("external_account_id", "external_account_label", "user__email")
    readonly_fields = [f.name for f in ConnectedAccount._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConnectedAccount]:
        return super().get_queryset(request).filter(provider__deleted_at__isnull=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are connected by their users on the connect pages

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ConnectedAccount) -> None:
        """Deleting is disconnecting: revoked at the provider, retried by the sweep while it is down."""
        try:
            outcome = services.disconnect_account(account_id=obj.pk, actor_user_id=request.user.pk, request=request)
        except ConnectorError as exc:
            self.message_user(request, f"{exc} [{exc.code}]", messages.ERROR)
            return
        self.message_user(request, f"{obj.provider.key} account of {obj.user}: {outcome.detail}", messages.INFO)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ConnectedAccount]) -> None:
        for account in queryset.select_related("provider", "user"):
            self.delete_model(request, account)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: object) -> HttpResponse:
        # delete_model said what happened (disconnected, or deleted): no "deleted successfully" on top
        opts = self.opts
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"))


tenant_admin_site.register(Provider, ProviderAdmin)
tenant_admin_site.register(ConnectedAccount, ConnectedAccountAdmin)
