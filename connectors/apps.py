import os

from django.apps import AppConfig
from django.core import checks


def check_provider_concurrency(**kwargs: object) -> list[checks.CheckMessage]:
    """One provider's calls in flight must stay below one web process's threads (connectors.slots)."""
    from django.conf import settings

    threads = int(os.environ.get("GUNICORN_THREADS", "4"))
    if threads <= settings.CONNECTORS_PROVIDER_CONCURRENCY:
        return [
            checks.Warning(
                f"CONNECTORS_PROVIDER_CONCURRENCY ({settings.CONNECTORS_PROVIDER_CONCURRENCY}) is not below "
                f"GUNICORN_THREADS ({threads}): one slow provider could hold every thread of a web worker",
                id="connectors.W001",
            )
        ]
    return []


class ConnectorsConfig(AppConfig):
    """Upstream providers and connected accounts: the platform as OAuth client."""

    name = "connectors"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django.test.signals import setting_changed

        from connectors import receivers  # noqa: F401  (queues the upstream sweep when a membership ends)
        from connectors.crypto import reset_field_keys
        from connectors.schedules import create_schedules

        def on_setting_changed(*, setting: str, **kwargs: object) -> None:
            if setting in {"FERNET_KEYS", "FERNET_USE_HKDF"}:
                reset_field_keys()  # fernet_fields caches the keys on each field

        checks.register(check_provider_concurrency, checks.Tags.compatibility)
        setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="connectors.fernet_keys")
        # the app's own beat rows, once the public schema is migrated (connectors is tenant-only)
        post_migrate.connect(create_schedules, sender=self, dispatch_uid="connectors.schedules")
