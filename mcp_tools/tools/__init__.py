"""The bundled tools; importing this package registers them."""

from mcp_tools.tools import crm, tenant_info  # noqa: F401
