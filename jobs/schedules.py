"""Periodic jobs as admin-editable django-celery-beat rows (public schema). Each app lists its rows
in its own ``schedules.py`` and connects a ``post_migrate`` receiver that calls ``ensure_schedules``:
rows are created once, after the public schema is migrated, and an admin's later changes (times,
intervals, disabling) are never overwritten."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import connection
from django_tenants.utils import get_public_schema_name


@dataclass(frozen=True)
class Crontab:
    """A row at a time of day (UTC), found again by its name."""

    name: str
    task: str
    minute: str
    hour: str = "*"


@dataclass(frozen=True)
class Every:
    """A row every ``seconds``, created unless a row for the task already exists (whatever its name)."""

    name: str
    task: str
    seconds: int


def ensure_schedules(schedules: Iterable[Crontab | Every], *, renamed_tasks: Mapping[str, str] | None = None) -> None:
    if connection.schema_name != get_public_schema_name():
        return
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for old, new in (renamed_tasks or {}).items():  # rows created before a task was renamed
        PeriodicTask.objects.filter(task=old).update(task=new)
    for row in schedules:
        if isinstance(row, Crontab):
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=row.minute, hour=row.hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
            )
            PeriodicTask.objects.get_or_create(name=row.name, defaults={"task": row.task, "crontab": crontab})
        elif not PeriodicTask.objects.filter(task=row.task).exists():
            interval, _ = IntervalSchedule.objects.get_or_create(every=row.seconds, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(name=row.name, task=row.task, interval=interval)
