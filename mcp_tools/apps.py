from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class McpToolsConfig(AppConfig):
    name = "mcp_tools"
    verbose_name = "MCP tools"

    def ready(self) -> None:
        # every installed app's scopes.py and tools.py (crm.tools, tenants.tools, ...): a new domain
        # app declares its own tools and scopes without touching this app
        from django.db.models.signals import post_migrate

        from declarations.tools import check_declared_scopes
        from mcp_tools.schedules import create_schedules

        post_migrate.connect(create_schedules, sender=self)  # the idempotency purge's beat row

        autodiscover_modules("scopes")
        autodiscover_modules("tools")
        check_declared_scopes()

        from django.db.models.signals import post_migrate

        from mcp_tools.receivers import ensure_policies_after_migrate

        post_migrate.connect(ensure_policies_after_migrate, sender=self)

        # on /mcp routing skips its tenant query: the bearer statement reads the tenant row, which the
        # view hands to routing (mcp_tools.views); an answer given before that statement is confirmed
        # by routing itself afterwards (tenants.middleware)
        from oauth.issuer import MCP_PATH
        from tenants.routing import confirmed_by_view

        confirmed_by_view.add(MCP_PATH)
