"""The MCP endpoint's periodic jobs as admin-editable django-celery-beat rows (public schema), created
once after ``migrate`` on the public schema; an admin may change or disable them afterwards, and this
never overwrites that."""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import get_public_schema_name

SCHEDULES = [
    # (name, task, crontab minute, hour)
    ("Purge expired MCP idempotency records", "mcp_tools.purge_idempotency_records_everywhere", "41", "*"),
]


def ensure_schedules(sender, **kwargs) -> None:
    if connection.schema_name != get_public_schema_name():
        return
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    for name, task, minute, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})
