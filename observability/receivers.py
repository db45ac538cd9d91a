"""Signals observed without changing their senders: DOT's ``app_authorized`` (a token was issued:
the user it was issued to, for the token endpoint's audit event), Celery's ``task_success``
(per-tenant periodic jobs' results as ``platform_job_results``), and the edge's limits from
``tenants.signals`` (a rate-limit store that did not answer; a login limit reached: an alert)."""

from __future__ import annotations

import logging

from celery.signals import task_success
from django.db import connection
from django.dispatch import receiver
from oauth2_provider.signals import app_authorized

from accounts.models import User
from observability import audit, metrics
from tenants.selectors import active_membership
from tenants.signals import login_limit_reached, rate_limit_unavailable

logger = logging.getLogger(__name__)

# the periodic jobs whose results are counted; their first argument is the tenant's slug
JOB_SUFFIX = "_in_tenant"


@receiver(app_authorized, dispatch_uid="observability.app_authorized")
def note_issued_user(sender, request, token, **kwargs) -> None:
    request.audit_user_id = token.user_id


@task_success.connect(dispatch_uid="observability.task_success")
def count_job_results(sender=None, result=None, **kwargs) -> None:
    name = getattr(sender, "name", "") or ""
    if not name.endswith(JOB_SUFFIX):
        return
    args = getattr(getattr(sender, "request", None), "args", None) or ()
    tenant = args[0] if args and isinstance(args[0], str) else ""
    if isinstance(result, dict):
        for key, value in result.items():
            if isinstance(key, str) and isinstance(value, int | float) and not isinstance(value, bool):
                metrics.job_result(tenant, name, key, value)
    elif isinstance(result, int) and not isinstance(result, bool):
        metrics.job_result(tenant, name, "processed", result)


@receiver(rate_limit_unavailable, dispatch_uid="observability.rate_limit_unavailable")
def count_rate_limit_unavailable(sender, tenant: str, limit: str, **kwargs) -> None:
    metrics.rate_limit_unavailable(tenant, limit)


@receiver(login_limit_reached, dispatch_uid="observability.login_limit_reached")
def alert_login_limit(sender, request, kind: str, username: str | None, **kwargs) -> None:
    """An address locked or an account throttled: counted, logged and, at a tenant, an audit event
    (``login_limit``, outcome ``address`` or ``account``, the member's user id when the account is a
    member of this tenant, the source address), which the auth health page shows."""
    tenant = connection.schema_name
    metrics.login_limit(tenant, kind)
    logger.warning("login limit reached: tenant=%s kind=%s", tenant, kind)  # no email, no address
    user_id = None
    if kind == "account" and username and getattr(request, "tenant", None) is not None:
        user = User.objects.filter(email=username).only("pk").first()
        if user is not None and active_membership(user.pk, request.tenant.pk) is not None:
            user_id = user.pk
    audit.record(event="login_limit", outcome=kind, user_id=user_id, request=request)
