"""The platform admin's user pages. Registered by ``tenants.admin``, which adds what needs the
tenants (deactivating a user ends their memberships); this module sits below the tenants app."""

from datetime import UTC, datetime

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import DateTimeField, QuerySet, Value
from django.db.models.functions import Coalesce

from accounts.forms import PlatformUserChangeForm, PlatformUserCreationForm


class UserAdmin(BaseUserAdmin):
    form = PlatformUserChangeForm
    add_form = PlatformUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_active", "is_superuser", "date_joined", "last_login")
    search_fields = ("email", "full_name")
    list_filter = ("is_active", "is_superuser")
    fieldsets = (
        (None, {"fields": ("email", "password", "full_name")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),)
    filter_horizontal = ()
    readonly_fields = ("last_login",)

    def get_queryset(self, request) -> QuerySet:
        return super().get_queryset(request).select_related("login")  # one join, no query per user

    # a user who never signed in sorts as the oldest login: last when the newest come first
    @admin.display(
        description="last login",
        ordering=Coalesce("login__last_login", Value(datetime(1970, 1, 1, tzinfo=UTC), output_field=DateTimeField())),
    )
    def last_login(self, user) -> str:
        # formatted as the list formats dates, which the change page does only for model fields
        return display_for_value(user.last_login, self.get_empty_value_display())
