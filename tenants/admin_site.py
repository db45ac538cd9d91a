"""The tenant admin at ``/t/<slug>/admin/``: open to active members whose role is ``admin`` in that
tenant, and only there. Tenant-owned models register on ``tenant_admin_site`` with ``TenantModelAdmin``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.options import BaseModelAdmin
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.forms import PlatformAdminLoginForm, TenantAdminLoginForm  # tenants.forms: gate and limits
from tenants.models import Membership
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
    site_url = None  # no "View site" link: nothing is served at the root

    def has_permission(self, request: HttpRequest) -> bool:
        return is_tenant_admin(request)

    def each_context(self, request: HttpRequest) -> dict[str, object]:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name} — tenant administration"
        return context


def tenant_members(request: HttpRequest) -> QuerySet:
    """The users a tenant admin may pick or see: active members of the request's tenant only."""
    members = Membership.objects.active().filter(tenant=request.tenant).values("user_id")
    return get_user_model().objects.filter(pk__in=members)


def _is_user_field(db_field: object) -> bool:
    remote = getattr(getattr(db_field, "remote_field", None), "model", None)
    return isinstance(remote, type) and issubclass(remote, get_user_model())


class TenantModelAdmin(admin.ModelAdmin):
    """Permissions come from the tenant membership role, not Django's global permission tables.

    Put it *after* a library's admin class in the bases (``class X(LibraryAdmin, TenantModelAdmin)``),
    so the library's deliberate refusals (DOT's ``has_add_permission = False`` on tokens) stay in force.
    Every user field offers the tenant's active members only, as a select: Django's raw-id widget
    looks the label of any submitted id up in the whole user table, which would name other tenants'
    users; user filters list only the users present in the rows.
    """

    _PERMISSIONS = ("has_view_permission", "has_add_permission", "has_change_permission", "has_delete_permission")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        below = cls.__mro__[cls.__mro__.index(TenantModelAdmin) + 1 :]
        for klass in below:
            if klass in (admin.ModelAdmin, BaseModelAdmin, object):
                continue
            overridden = [name for name in cls._PERMISSIONS if name in vars(klass)]
            if overridden:
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}: list TenantModelAdmin after {klass.__qualname__} in the bases, "
                    f"or it overrides {klass.__qualname__}.{overridden[0]}"
                )

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

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if _is_user_field(db_field):
            kwargs["queryset"] = tenant_members(request)
            kwargs["widget"] = forms.Select()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if _is_user_field(db_field):
            kwargs["queryset"] = tenant_members(request)
            kwargs["widget"] = forms.SelectMultiple()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest):
        fields = {f.name: f for f in self.model._meta.get_fields()}
        return [
            (item, admin.RelatedOnlyFieldListFilter)
            if isinstance(item, str) and _is_user_field(fields.get(item))
            else item
            for item in super().get_list_filter(request)
        ]


class ViewAndRevokeAdmin:
    """Issued credentials and grants: a tenant admin sees them and revokes them with an admin action
    (``permissions=["revoke"]``) that calls a revocation service; nobody adds, edits or deletes rows."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return is_tenant_admin(request)


tenant_admin_site = TenantAdminSite(name="tenant_admin")


class PlatformAdminSite(admin.AdminSite):
    """The platform admin (public schema): superusers only."""

    site_header = "Platform administration"
    site_url = None
    login_form = PlatformAdminLoginForm  # superusers only; one generic error for every refusal

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_superuser)
