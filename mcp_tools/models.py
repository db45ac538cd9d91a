"""The tenant's scope matrix (tenant schema): per tool, enabled or not and the scopes it requires."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ToolPolicy(models.Model):
    tool_name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    scopes = models.CharField(max_length=500, blank=True, help_text="Space-separated; empty only with 'no auth'.")
    noauth = models.BooleanField(default=False, verbose_name="no auth")
    allow_noauth_write = models.BooleanField(
        default=False,
        help_text="Explicit override: lets a tool that writes run without authorization. Dangerous.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("tool_name",)
        verbose_name = "tool policy"
        verbose_name_plural = "scope matrix"

    def __str__(self) -> str:
        return self.tool_name

    @property
    def scope_set(self) -> tuple[str, ...]:
        return tuple(self.scopes.split())


class ToolPolicyChange(models.Model):
    """Who changed the matrix, when, and what it was before and after."""

    tool_name = models.CharField(max_length=100)
    # no database-level foreign key to the shared user table (tenants.user_references says why)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, db_constraint=False, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(null=True)
    after = models.JSONField()

    class Meta:
        ordering = ("-changed_at", "-id")

    def __str__(self) -> str:
        return f"{self.tool_name} @ {self.changed_at:%Y-%m-%d %H:%M}"


class IdempotencyRecord(models.Model):
    """The stored outcome of a write tool called with an idempotency key, one per
    (user, client, tool, key) in the tenant's schema (the schema is the tenant). Written in the same
    transaction as the tool's own write, or, for tools that write upstream, claimed before the call
    (``pending``) and completed after it. Only successful results are stored."""

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    user_id = models.BigIntegerField()  # public.accounts_user; no FK: purged by age, not by cascade
    client_id = models.CharField(max_length=255)  # as DOT's Application.client_id: a CIMD URL fits
    tool_name = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    arguments_hash = models.CharField(max_length=64)  # SHA-256 of the arguments' canonical JSON
    state = models.CharField(max_length=10, choices=State.choices)
    result = models.JSONField(null=True)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user_id", "client_id", "tool_name", "key"), name="idempotency_scope")
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} [{self.state}]"
