from __future__ import annotations

from django.contrib.auth.forms import AdminUserCreationForm, AuthenticationForm, UserChangeForm
from django.contrib.auth.signals import user_login_failed

from accounts.models import User

# The one answer to every refused sign-in, on every login page: a wrong password, an unknown or
# inactive account, an account that may not sign in *here* (not a member of the tenant, not its
# admin, not a platform superuser), a throttled account and a lockout must look the same, or the
# login page tells who belongs where, or which accounts someone is attacking.
LOGIN_FAILED = "Please enter a correct email and password, or try again later."


class GatedAuthenticationForm(AuthenticationForm):
    """Django's login form (``username`` holds the email) with one error for every failure.

    Subclasses decide who may sign in with ``login_allowed``. A refusal there counts as a failed login
    (``user_login_failed``, which django-axes records), so the lockout counter cannot tell a right
    password of a refused account from a wrong one either.
    """

    error_messages = {"invalid_login": LOGIN_FAILED, "inactive": LOGIN_FAILED}

    def login_allowed(self, user: User) -> bool:
        raise NotImplementedError

    def confirm_login_allowed(self, user: User) -> None:
        if not user.is_active or not self.login_allowed(user):
            user_login_failed.send(
                sender=type(self), credentials={"username": self.cleaned_data.get("username")}, request=self.request
            )
            raise self.get_invalid_login_error()


class SuperuserLoginForm(GatedAuthenticationForm):
    """The platform admin's login (``/admin/login/``): superusers only, as ``PlatformAdminSite`` requires."""

    def login_allowed(self, user: User) -> bool:
        return user.is_superuser


class PlatformUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class PlatformUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "full_name", "is_active", "is_staff", "is_superuser")
