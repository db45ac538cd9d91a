from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Enterprise identity per tenant: sign-in through the tenant's own OpenID provider, SCIM
    provisioning, and the register of sign-in sessions (tenant schema)."""

    name = "identity"
    verbose_name = "Enterprise identity"

    def ready(self) -> None:
        from identity import receivers  # noqa: F401  (sign-in sessions, break-glass audit)
