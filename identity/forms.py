"""The tenant's password sign-in with the SSO policy: when the tenant requires SSO, members sign in
through its identity provider and only its admins may use a password (break-glass, audited by
``identity.receivers``). A refused member gets the platform's one generic error and counts as a
failed login, like every other refusal (``accounts.forms``)."""

from __future__ import annotations

from accounts.models import User
from identity.selectors import sso_required
from tenants.forms import MembershipLoginForm
from tenants.selectors import active_membership


class SsoPolicyLoginForm(MembershipLoginForm):
    def login_allowed(self, user: User) -> bool:
        if not super().login_allowed(user):
            return False
        if not sso_required():
            return True
        membership = active_membership(user.pk, self.request.tenant.pk)
        return membership is not None and membership.is_admin
