from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.core.exceptions import ImproperlyConfigured

from accounts.forms import GatedAuthenticationForm


class GatedLoginView(auth_views.LoginView):
    """The sign-in page. Who may sign in is the form's decision, passed by the URLconf: accounts sits
    below tenants, so the tenant membership form (``tenants.forms.MembershipLoginForm``) is given in
    ``config.urls_tenant``. A form without a gate is refused rather than letting every account in."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = False

    def get_form_class(self) -> type[GatedAuthenticationForm]:
        form_class = super().get_form_class()
        if not issubclass(form_class, GatedAuthenticationForm):
            raise ImproperlyConfigured("GatedLoginView needs a GatedAuthenticationForm (pass form_class)")
        return form_class


class TenantLogoutView(auth_views.LogoutView):
    next_page = "login"
