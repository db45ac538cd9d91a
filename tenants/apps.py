from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed
        from django.core.signals import request_finished

        from tenants.login_limits import count_failure
        from tenants.recycling import recycle_connection

        request_finished.connect(recycle_connection, dispatch_uid="tenants.recycle_connection")
        user_login_failed.connect(count_failure, dispatch_uid="tenants.login_limits")
