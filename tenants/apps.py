from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed
        from django.db.models.signals import post_migrate

        from tenants.login_limits import count_failure
        from tenants.user_references import keep_dropped

        user_login_failed.connect(count_failure, dispatch_uid="tenants.login_limits")
        # foreign keys from tenant tables to shared tables stay dropped when a package migrates again
        post_migrate.connect(keep_dropped, sender=self, dispatch_uid="tenants.keep_user_foreign_keys_dropped")
