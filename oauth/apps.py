from django.apps import AppConfig


class OAuthConfig(AppConfig):
    """The per-tenant OAuth 2.1 authorization server, built on django-oauth-toolkit."""

    name = "oauth"
    label = "platform_oauth"
    verbose_name = "OAuth"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate
        from django.utils.module_loading import autodiscover_modules

        from oauth import checks, cimd, receivers  # noqa: F401  (receivers: lifecycle, CIMD profile; checks)
        from oauth.schedules import create_schedules

        post_migrate.connect(create_schedules, sender=self)

        autodiscover_modules("scopes")  # each app's scopes.py, read through oauth.scope_backend
