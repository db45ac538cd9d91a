from django.apps import AppConfig


class OAuthSharedConfig(AppConfig):
    """Platform-wide OAuth policy (public schema): the challenge-channel rules."""

    name = "oauth.shared"
    label = "oauth_shared"
    verbose_name = "OAuth client policy (all tenants)"
    default_auto_field = "django.db.models.BigAutoField"
