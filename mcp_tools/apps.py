from django.apps import AppConfig


class McpToolsConfig(AppConfig):
    name = "mcp_tools"
    verbose_name = "MCP tools"

    def ready(self) -> None:
        from mcp_tools import tools  # noqa: F401  (registers the bundled tools)
