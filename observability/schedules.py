"""The audit purge's periodic job (``jobs.schedules``: created once after ``migrate`` on the public
schema, admin-editable afterwards)."""

from __future__ import annotations

from typing import Any

from jobs.schedules import Crontab, ensure_schedules

SCHEDULES = [
    Crontab("Purge auth events past their retention", "observability.purge_auth_events_everywhere", "41", "4"),
]


def create_schedules(**kwargs: Any) -> None:
    ensure_schedules(SCHEDULES)
