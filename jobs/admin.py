"""Platform admin: the last run of each job in each tenant, and "run now"."""

from __future__ import annotations

from celery import current_app
from django.contrib import admin, messages

from jobs.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job", "tenant_slug", "outcome", "counts", "errors", "started_at", "duration_ms", "runs")
    list_filter = ("outcome", "job")
    search_fields = ("job", "tenant_slug")
    readonly_fields = [f.name for f in JobRun._meta.fields]
    actions = ("run_now",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Run now (queue the job for the selected tenants)")
    def run_now(self, request, queryset) -> None:
        queued = 0
        for row in queryset:
            current_app.send_task(row.job, args=[row.tenant_slug])
            queued += 1
        self.message_user(request, f"Queued {queued} job run(s).", messages.SUCCESS)
