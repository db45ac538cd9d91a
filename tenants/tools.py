"""Tools of the tenants app (found by autodiscovery of ``tools`` modules)."""

from __future__ import annotations

from typing import Any

from declarations.principal import ToolContext
from declarations.tools import NOAUTH, tool
from tenants.guard import assert_tenant


@tool(
    name="tenant_info",
    title="Workspace information",
    description="Public information about this workspace: its name and what the MCP server offers.",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    output_schema={
        "type": "object",
        "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
        "required": ["slug", "name"],
    },
    scopes=NOAUTH,
    read_only=True,
)
def tenant_info(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    tenant = assert_tenant(ctx.principal)
    return {"slug": tenant.slug, "name": tenant.name}
