from django.apps import AppConfig


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

        setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="connectors.fernet_keys")
        # the app's own beat rows, once the public schema is migrated (connectors is tenant-only)
        post_migrate.connect(create_schedules, sender=self, dispatch_uid="connectors.schedules")
