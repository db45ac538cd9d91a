"""Signals observed without changing their senders: DOT's ``app_authorized`` (a token was issued:
the user it was issued to, for the token endpoint's audit event) and Celery's ``task_success``
(per-tenant periodic jobs' results as ``platform_job_results``)."""

from __future__ import annotations

from celery.signals import task_success
from django.dispatch import receiver
from oauth2_provider.signals import app_authorized

from observability import metrics

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
