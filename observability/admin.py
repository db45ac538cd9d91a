"""The audit trail in the tenant admin (read-only, filterable) and the auth health page at
``/t/<slug>/admin/observability/authevent/health/``."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from observability import charts, health, selectors
from observability.models import AuthEvent
from tenants.admin_site import TenantModelAdmin, tenant_admin_site


@admin.register(AuthEvent, site=tenant_admin_site)
class AuthEventAdmin(TenantModelAdmin):
    list_display = ("created_at", "event", "auth_class", "outcome", "count", "user_id", "client_id", "tool",
                    "source_address", "request_id")
    list_filter = ("event", "auth_class", "outcome", "aggregated", "created_at")
    search_fields = ("=client_id", "=request_id", "=tool", "=source_address")
    date_hierarchy = "created_at"
    change_list_template = "admin/observability/authevent/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self):
        return [path("health/", self.admin_site.admin_view(self.health_view), name="observability_health"),
                *super().get_urls()]

    def health_view(self, request: HttpRequest) -> TemplateResponse:
        now = timezone.now()
        hours, by_class = selectors.events_by_class(now)
        _, refreshes = selectors.refresh_outcomes(now)
        unattributed = health.Panel(
            title="Failures before a client was known",
            bars=selectors.unattributed_totals(now),
            empty_text="none in the last 24 hours",
            help_text="No token, a malformed or unknown token, an unknown client at the token endpoint: "
            "counted per minute in aggregated rows, not one row per request.",
        )
        login_limits = health.Panel(
            title="Login limits reached",
            bars=selectors.login_limit_alerts(now),
            empty_text="none in the last 24 hours",
            help_text="An address locked after LOGIN_ADDRESS_FAILURE_LIMIT failures, or an account whose logins "
            "were throttled after LOGIN_ACCOUNT_FAILURE_LIMIT failures from any addresses (someone guessing its "
            "password): filter the auth events by event = login_limit for the user and addresses.",
        )
        own = [login_limits, unattributed]
        panels = [(p, charts.horizontal_bars(p.title, p.bars)) for p in [*own, *health.panels()]]
        context = {
            **self.admin_site.each_context(request),
            "title": "Auth health (last 24 hours)",
            "opts": self.model._meta,
            "by_class_chart": charts.stacked_columns("Auth events by class", hours, by_class),
            "by_class_legend": charts.legend(by_class),
            "refresh_chart": charts.stacked_columns("Refresh outcomes", hours, refreshes),
            "refresh_legend": charts.legend(refreshes),
            "panels": panels,
        }
        return TemplateResponse(request, "admin/observability/health.html", context)
