"""The audit trail: one row per security-relevant auth decision, in the tenant's schema."""

from __future__ import annotations

from django.db import models


class AuthEvent(models.Model):
    """Who (user id, client id), where (tenant, source address, request id), what (event, class,
    tool) and the outcome. Never a token, code, secret or verifier: the recording service takes none."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    tenant = models.CharField(max_length=63)
    event = models.CharField(max_length=40, db_index=True)
    auth_class = models.CharField("class", max_length=40, blank=True, db_index=True)
    outcome = models.CharField(max_length=40, blank=True)
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    client_id = models.CharField(max_length=255, blank=True, db_index=True)
    tool = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    # Failures before any client is known (no token, an unknown token, an unknown client at the token
    # endpoint) are not stored one by one: one aggregated row per event, class, outcome and minute
    # (created_at is the minute) counts them (observability.audit.record_unattributed).
    aggregated = models.BooleanField(default=False)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "auth event"
        constraints = [
            models.UniqueConstraint(
                fields=["created_at", "event", "auth_class", "outcome"],
                condition=models.Q(aggregated=True),
                name="authevent_one_aggregate_per_minute",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.auth_class or self.outcome} at {self.created_at:%Y-%m-%d %H:%M:%S}"
