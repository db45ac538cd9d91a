from django.apps import AppConfig


class OAuthConfig(AppConfig):
    """The per-tenant OAuth 2.1 authorization server, built on django-oauth-toolkit."""

    name = "oauth"
    label = "platform_oauth"
    verbose_name = "OAuth"

    def ready(self) -> None:
        from oauth import cimd, receivers  # noqa: F401  (connects lifecycle and CIMD-profile receivers)
