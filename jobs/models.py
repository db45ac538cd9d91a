"""The last run of each periodic job in each tenant (public schema, the platform admin's view)."""

from __future__ import annotations

from django.db import models


class JobRun(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        OK = "ok", "ok"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped (already running elsewhere)"

    job = models.CharField(max_length=100, help_text="the Celery task that runs the job in one tenant")
    tenant_slug = models.CharField(max_length=63)
    run_id = models.CharField(max_length=64, blank=True, help_text="shared by the parts of one run")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="error classes, never secrets")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0, help_text="how many times this job has run in this tenant")

    class Meta:
        ordering = ("job", "tenant_slug")
        constraints = [models.UniqueConstraint(fields=("job", "tenant_slug"), name="jobs_one_row_per_job_and_tenant")]

    def __str__(self) -> str:
        return f"{self.job} in {self.tenant_slug} ({self.outcome})"
