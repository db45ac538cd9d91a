from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from tenants.login_limits import count_failure

        user_login_failed.connect(count_failure, dispatch_uid="tenants.login_limits")
