"""The authorization server's periodic jobs, as admin-editable django-celery-beat rows (public
schema). Created once after ``migrate`` on the public schema; an admin may change or disable them
afterwards, and this never overwrites that."""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import get_public_schema_name

LEGACY_TASK_NAMES = {"oauth.expire_unused_clients": "oauth.expire_unused_clients_everywhere"}
SCHEDULES = [
    # (name, task, crontab minute, hour)
    ("Expire unused dynamically registered OAuth clients", "oauth.expire_unused_clients_everywhere", "17", "3"),
    ("Purge expired and revoked platform tokens and codes", "oauth.purge_tokens", "7", "*"),
]
INTERVALS = [
    # (name, task, every N seconds): the safety net behind the membership/tenant receivers
    ("Revoke platform tokens of ended memberships and deactivated tenants", "oauth.revoke_departed", 300),
]


def ensure_schedules(sender, **kwargs) -> None:
    if connection.schema_name != get_public_schema_name():
        return
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for old, new in LEGACY_TASK_NAMES.items():  # rows created before the fan-out task was renamed
        PeriodicTask.objects.filter(task=old).update(task=new)
    for name, task, minute, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})
    for name, task, seconds in INTERVALS:
        if not PeriodicTask.objects.filter(task=task).exists():
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(name=name, task=task, interval=interval)
