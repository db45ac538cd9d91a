from __future__ import annotations

import logging

from django.db import connection

logger = logging.getLogger(__name__)


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception:  # classified below, never leaked
        logger.exception("database health check failed")
        return "unreachable"


def check_broker() -> str:
    # the project's Celery app, as configured by the entry point (config/__init__.py); importing
    # config from here would point the bottom layer upward
    from celery import current_app as app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:
        logger.exception("broker health check failed")
        return "unreachable"
