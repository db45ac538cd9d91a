"""The connectors' periodic jobs (``jobs.schedules``: created once after the public schema is
migrated, admin-editable afterwards; changed intervals are kept)."""

from __future__ import annotations

from typing import Any

from jobs.schedules import Every, ensure_schedules

SCHEDULES = [
    Every("Refresh connector tokens about to expire", "connectors.refresh_expiring", 60),
    Every("Connector sweep: revoke departed members' accounts, retry failed revocations", "connectors.sweep", 900),
    Every("Connector keys: re-encrypt credentials under the newest FERNET_KEYS key", "connectors.reencrypt", 3600),
]


def create_schedules(**kwargs: Any) -> None:
    ensure_schedules(SCHEDULES)
