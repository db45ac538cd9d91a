"""The login forms: the tenant's one, for its sign-in page and its admin (an active member of the
request's tenant, and for the admin with the ``admin`` role, may sign in), and the platform admin's.
Everyone refused gets the platform's one generic login error (``accounts.forms.LOGIN_FAILED``), and
every one of them is held to the login limits (``tenants.login_limits``) before its password is
checked."""

from __future__ import annotations

from accounts.forms import GatedAuthenticationForm, SuperuserLoginForm
from accounts.lockout import attempted_username
from accounts.models import User
from tenants import login_limits
from tenants.selectors import active_membership


class LimitedLoginForm(GatedAuthenticationForm):
    """Refuses, before any password is checked, an attempt from a locked address (the lockout's 429,
    through django-axes' middleware) or for a throttled account (the generic error, ``Retry-After``)."""

    def clean(self):
        refusal = login_limits.refusal(self.request, attempted_username(self.request, self.data))
        if refusal is not None:
            self.request.login_retry_after = refusal.retry_after
            if refusal.locked:
                self.request.axes_locked_out = True  # AxesMiddleware answers with accounts.lockout's 429
            raise self.get_invalid_login_error()
        return super().clean()


class PlatformAdminLoginForm(LimitedLoginForm, SuperuserLoginForm):
    """``/admin/login/``: superusers only, under the same limits (public schema counters)."""


class MembershipLoginForm(LimitedLoginForm):
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
