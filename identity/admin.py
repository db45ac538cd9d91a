"""Tenant admin for the tenant's identity providers (the client secret is write-only; the email
domains and link-by-email are the platform operator's, shown read-only) and a view of the links
and of the SSO policy. Saving goes through ``identity.services.add_provider`` (discovery included)."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest

from identity import discovery
from identity.errors import IdentityError
from identity.models import IdentityLink, IdentityProvider, SsoPolicy
from identity.services import NOT_GIVEN, add_provider
from tenants.admin_site import TenantModelAdmin, ViewAndRevokeAdmin, tenant_admin_site


class IdentityProviderForm(forms.ModelForm):
    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored secret.",
    )
    issuer = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = IdentityProvider
        fields = (
            "key",
            "name",
            "issuer",
            "client_id",
            "client_secret",
            "jit_role",
            "role_claim",
            "admin_value",
            "organization_claim",
            "organization_value",
            "accept_id_jag",
            "is_enabled",
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("issuer") and "issuer" in self.changed_data:
            try:
                discovery.discover(cleaned["issuer"])
            except IdentityError as exc:
                self.add_error("issuer", f"{exc} [{exc.code}]")
        if cleaned.get("role_claim") and not cleaned.get("admin_value"):
            self.add_error("admin_value", "A role claim needs the value that means admin.")
        return cleaned


class IdentityProviderAdmin(TenantModelAdmin):
    form = IdentityProviderForm
    list_display = ("key", "name", "issuer", "jit_role", "is_enabled", "accept_id_jag")
    readonly_fields = ("email_domains", "link_by_email", "metadata", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: IdentityProvider | None = None):
        return (*self.readonly_fields, "key") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: IdentityProvider, form: IdentityProviderForm, change: bool) -> None:
        data = form.cleaned_data
        provider, _ = add_provider(
            key=obj.key,
            issuer=data["issuer"],
            client_id=data["client_id"],
            client_secret=data["client_secret"] or NOT_GIVEN,
            name=data["name"],
            jit_role=data["jit_role"],
            role_claim=data["role_claim"],
            admin_value=data["admin_value"],
            organization=(data["organization_claim"], data["organization_value"]),
            accept_id_jag=data["accept_id_jag"],
        )
        if provider.is_enabled != data["is_enabled"]:
            provider.is_enabled = data["is_enabled"]
            provider.save(update_fields=["is_enabled", "updated_at"])
        obj.pk = provider.pk


class IdentityLinkAdmin(ViewAndRevokeAdmin, TenantModelAdmin):
    list_display = ("provider", "subject", "organization", "user", "created_at", "last_sign_in_at")
    list_filter = ("provider",)
    fields = list_display
    readonly_fields = list_display


class SsoPolicyAdmin(ViewAndRevokeAdmin, TenantModelAdmin):
    """Read-only here: ``manage.py tenant_sso_required <tenant> on|off`` sets it."""

    list_display = ("__str__", "updated_at")
    fields = ("sso_required", "updated_at")
    readonly_fields = fields


tenant_admin_site.register(IdentityProvider, IdentityProviderAdmin)
tenant_admin_site.register(IdentityLink, IdentityLinkAdmin)
tenant_admin_site.register(SsoPolicy, SsoPolicyAdmin)
