"""Writes of the observability app (the recording itself is ``observability.audit``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from observability.models import AuthEvent


def purge_expired_events(*, retention_days: int | None = None) -> int:
    """Delete the current schema's auth events older than the retention (``AUDIT_RETENTION_DAYS``)."""
    days = settings.AUDIT_RETENTION_DAYS if retention_days is None else retention_days
    deleted, _ = AuthEvent.objects.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
