"""The audit purge's django-celery-beat row (public schema), created once after ``migrate``; an admin
may change or disable it afterwards and this never overwrites that (like ``oauth.schedules``)."""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import get_public_schema_name

SCHEDULES = [
    # (name, task, crontab minute, hour)
    ("Purge auth events past their retention", "observability.purge_auth_events_everywhere", "41", "4"),
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
