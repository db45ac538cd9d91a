"""The tenant login form, one for the tenant's sign-in page and its admin: an active member of the
request's tenant (and, for the admin, with the ``admin`` role) may sign in; everyone else gets the
platform's one generic login error (``accounts.forms.LOGIN_FAILED``)."""

from __future__ import annotations

from accounts.forms import GatedAuthenticationForm
from accounts.models import User
from tenants.selectors import active_membership


class MembershipLoginForm(GatedAuthenticationForm):
    require_admin = False

    def login_allowed(self, user: User) -> bool:
        tenant = getattr(self.request, "tenant", None)
        if tenant is None or not tenant.is_active:
            return False
        membership = active_membership(user.pk, tenant.pk)
        return membership is not None and (membership.is_admin or not self.require_admin)


class TenantAdminLoginForm(MembershipLoginForm):
    """``/t/<slug>/admin/login/``: Django's admin login demands ``is_staff``; the tenant role decides here."""

    require_admin = True
