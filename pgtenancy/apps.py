from django.apps import AppConfig


class PgTenancyConfig(AppConfig):
    name = "pgtenancy"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from pgtenancy.recycling import recycle_connection

        request_finished.connect(recycle_connection, dispatch_uid="pgtenancy.recycle_connection")
