"""The authorization server's periodic jobs (``jobs.schedules``: created once after ``migrate`` on
the public schema, admin-editable afterwards)."""

from __future__ import annotations

from typing import Any

from jobs.schedules import Crontab, Every, ensure_schedules

RENAMED_TASKS = {"oauth.expire_unused_clients": "oauth.expire_unused_clients_everywhere"}
SCHEDULES = [
    Crontab("Expire unused dynamically registered OAuth clients", "oauth.expire_unused_clients_everywhere", "17", "3"),
    Crontab("Purge expired and revoked platform tokens and codes", "oauth.purge_tokens", "7"),
    # the safety net behind the membership/tenant receivers
    Every("Revoke platform tokens of ended memberships and deactivated tenants", "oauth.revoke_departed", 300),
]


def create_schedules(**kwargs: Any) -> None:
    ensure_schedules(SCHEDULES, renamed_tasks=RENAMED_TASKS)
