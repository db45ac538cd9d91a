from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts.models import User


class PlatformUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class PlatformUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "is_active", "is_staff", "is_superuser")
