from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Upstream providers and connected accounts (the platform as OAuth client). Arrives with the
    connectors issue; the app exists now so the layout of docs/architecture.md is true."""

    name = "connectors"
