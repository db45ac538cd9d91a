from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from tenants.recycling import recycle_connection

        request_finished.connect(recycle_connection, dispatch_uid="tenants.recycle_connection")
