from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from mcp_tools.models import ToolPolicy, ToolPolicyChange
from mcp_tools.services import save_policy, validate_policy
from tenants.admin_site import TenantModelAdmin, tenant_admin_site

EDITABLE = ("enabled", "scopes", "noauth", "allow_noauth_write")


class ToolPolicyForm(forms.ModelForm):
    class Meta:
        model = ToolPolicy
        fields = EDITABLE

    def clean(self):
        cleaned = super().clean()
        candidate = ToolPolicy(tool_name=self.instance.tool_name, **{k: cleaned.get(k) for k in EDITABLE})
        candidate.scopes = " ".join((cleaned.get("scopes") or "").split())
        try:
            validate_policy(candidate)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "message_dict") else exc.messages) from exc
        cleaned["scopes"] = candidate.scopes
        return cleaned


class ToolPolicyAdmin(TenantModelAdmin):
    form = ToolPolicyForm
    list_display = ("tool_name", "enabled", "scopes", "noauth", "updated_at")
    readonly_fields = ("tool_name",)

    def has_add_permission(self, request) -> bool:
        return False  # one row per registered tool, created after migrate (mcp_tools.receivers)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        save_policy(policy=obj, changed_by_id=request.user.pk)


class ToolPolicyChangeAdmin(TenantModelAdmin):
    list_display = ("tool_name", "changed_by", "changed_at", "before", "after")
    list_filter = ("tool_name",)
    list_select_related = ("changed_by",)

    def has_add_permission(self, request) -> bool:
        return False  # the audit trail is written by save_policy only

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


tenant_admin_site.register(ToolPolicy, ToolPolicyAdmin)
tenant_admin_site.register(ToolPolicyChange, ToolPolicyChangeAdmin)
