from __future__ import annotations

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm

from tenants.selectors import active_membership


class TenantAuthenticationForm(AuthenticationForm):
    """Django's standard login form (``username`` holds the email); only members of the tenant pass."""

    def confirm_login_allowed(self, user: object) -> None:
        super().confirm_login_allowed(user)
        tenant = getattr(self.request, "tenant", None)
        if tenant is None or active_membership(user.pk, tenant.pk) is None:
            raise forms.ValidationError("This account is not a member of this tenant.", code="not_a_member")


class TenantLoginView(auth_views.LoginView):
    form_class = TenantAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = False


class TenantLogoutView(auth_views.LogoutView):
    next_page = "login"
