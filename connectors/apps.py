from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Upstream providers and connected accounts: the platform as OAuth client."""

    name = "connectors"

    def ready(self) -> None:
        from django.test.signals import setting_changed

        from connectors import tools  # noqa: F401  (registers the connector tools)
        from connectors.crypto import reset_field_keys

        def on_setting_changed(*, setting: str, **kwargs: object) -> None:
            if setting in {"FERNET_KEYS", "FERNET_USE_HKDF"}:
                reset_field_keys()

        setting_changed.connect(on_setting_changed, weak=False, dispatch_uid="connectors.fernet_keys")
