"""The connectors' periodic jobs as admin-managed django-celery-beat rows, created once (after the
public schema is migrated) and then left to the admin: changed intervals are kept."""

from __future__ import annotations

from typing import Any

SCHEDULES = [
    # (name, task, every N seconds)
    ("Refresh connector tokens about to expire", "connectors.refresh_expiring", 60),
    ("Connector sweep: revoke departed members' accounts, retry failed revocations", "connectors.sweep", 900),
    ("Connector keys: re-encrypt credentials under the newest FERNET_KEYS key", "connectors.reencrypt", 3600),
]


def ensure_schedules(**kwargs: Any) -> None:
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask
    from django_tenants.utils import get_public_schema_name

    if connection.schema_name != get_public_schema_name():
        return
    for name, task, seconds in SCHEDULES:
        if PeriodicTask.objects.filter(task=task).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name=name, task=task, interval=interval)
