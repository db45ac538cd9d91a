from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Metrics, the audit trail of auth decisions, alerts' sources and the auth health page."""

    name = "observability"
    verbose_name = "Auth observability"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django.utils.module_loading import autodiscover_modules

        from observability import receivers  # noqa: F401  (DOT's app_authorized, Celery task results)
        from observability.schedules import create_schedules

        post_migrate.connect(create_schedules, sender=self, dispatch_uid="observability.schedules")
        autodiscover_modules("health_panels")  # each app's panels for the auth health page
