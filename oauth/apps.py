from django.apps import AppConfig


class OAuthConfig(AppConfig):
    """The per-tenant OAuth 2.1 authorization server, built on django-oauth-toolkit."""

    name = "oauth"
    label = "platform_oauth"
    verbose_name = "OAuth"

    def ready(self) -> None:
        from oauth import receivers  # noqa: F401  (connects lifecycle signal receivers)
