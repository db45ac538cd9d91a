from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    """No models: an app only so that Django finds the management command."""

    name = "lifecycle"
    verbose_name = "Auth lifecycle check"
