"""The MCP endpoint's periodic jobs (``jobs.schedules``: created once after ``migrate`` on the
public schema, admin-editable afterwards)."""

from __future__ import annotations

from typing import Any

from jobs.schedules import Crontab, ensure_schedules

SCHEDULES = [
    Crontab("Purge expired MCP idempotency records", "mcp_tools.purge_idempotency_records_everywhere", "41"),
]


def create_schedules(**kwargs: Any) -> None:
    ensure_schedules(SCHEDULES)
