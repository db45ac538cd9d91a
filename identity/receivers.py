"""Sign-ins and sign-outs in a tenant: the register of sessions (``SignInSession``), and the audit
event of a break-glass password sign-in while the tenant requires SSO."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import connection
from django.dispatch import receiver

from identity import services
from identity.selectors import sso_required
from observability import audit


def _in_tenant(request) -> bool:
    return request is not None and hasattr(request, "session") and connection.schema_name != "public"


@receiver(user_logged_in, dispatch_uid="identity.record_sign_in")
def record_sign_in(sender, request, user, **kwargs) -> None:
    if not _in_tenant(request):
        return
    sso = getattr(request, "identity_sign_in", None)  # (provider, sid) set by the SSO callback
    if sso is not None:
        services.record_sign_in(request=request, user_id=user.pk, provider=sso[0], sid=sso[1])
        return
    services.record_sign_in(request=request, user_id=user.pk)
    if sso_required():  # only an admin gets here with a password (identity.forms): break-glass
        audit.record(event="break_glass_login", outcome="password", user_id=user.pk, client_id="", request=request)


@receiver(user_logged_out, dispatch_uid="identity.forget_session")
def forget_session(sender, request, user, **kwargs) -> None:
    if _in_tenant(request):
        services.forget_session(session_key=request.session.session_key)
