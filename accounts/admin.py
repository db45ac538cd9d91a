"""The platform admin's user pages. Registered by ``tenants.admin``, which adds what needs the
tenants (deactivating a user ends their memberships); this module sits below the tenants app."""

from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.forms import PlatformUserChangeForm, PlatformUserCreationForm


class UserAdmin(BaseUserAdmin):
    form = PlatformUserChangeForm
    add_form = PlatformUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_active", "is_superuser", "date_joined")
    search_fields = ("email", "full_name")
    list_filter = ("is_active", "is_superuser")
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),)
    filter_horizontal = ()
