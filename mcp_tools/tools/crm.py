from __future__ import annotations

from typing import Any

from crm import services
from mcp_tools.principal import ToolContext
from mcp_tools.registry import ToolArgumentError, tool

CONTACT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "company": {"type": "string"},
        "phone": {"type": "string"},
    },
    "required": ["id", "name"],
}
CONTACT_ID = {"type": "integer", "minimum": 1, "description": "The contact's id in this workspace"}


def _call(fn, *args: Any) -> Any:
    try:
        return fn(*args)
    except services.NotFound as exc:
        raise ToolArgumentError(str(exc)) from exc


@tool(
    name="crm_search_contacts",
    title="Search contacts",
    description="Search this workspace's CRM contacts by name, email or company.",
    input_schema={
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 200},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"contacts": {"type": "array", "items": CONTACT}},
        "required": ["contacts"],
    },
    scopes=("crm.read",),
    read_only=True,
)
def search_contacts(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"contacts": services.search_contacts(ctx.principal, args.get("query", ""), args.get("limit", 20))}


@tool(
    name="crm_get_contact",
    title="Get a contact",
    description="Fetch one contact with its latest notes.",
    input_schema={
        "type": "object",
        "properties": {"contact_id": CONTACT_ID},
        "required": ["contact_id"],
        "additionalProperties": False,
    },
    scopes=("crm.read",),
    read_only=True,
)
def get_contact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _call(services.get_contact, ctx.principal, args["contact_id"])


@tool(
    name="crm_create_note",
    title="Add a note",
    description="Add a note to a contact.",
    input_schema={
        "type": "object",
        "properties": {"contact_id": CONTACT_ID, "body": {"type": "string", "minLength": 1, "maxLength": 5000}},
        "required": ["contact_id", "body"],
        "additionalProperties": False,
    },
    scopes=("crm.write",),
    read_only=False,
)
def create_note(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _call(services.create_note, ctx.principal, args["contact_id"], args["body"])


@tool(
    name="crm_update_contact",
    title="Update a contact",
    description="Change a contact's name, email, company or phone.",
    input_schema={
        "type": "object",
        "properties": {
            "contact_id": CONTACT_ID,
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "maxLength": 254},
            "company": {"type": "string", "maxLength": 200},
            "phone": {"type": "string", "maxLength": 50},
        },
        "required": ["contact_id"],
        "additionalProperties": False,
    },
    output_schema=CONTACT,
    scopes=("crm.write",),
    read_only=False,
)
def update_contact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    changes = {k: v for k, v in args.items() if k != "contact_id"}
    return _call(services.update_contact, ctx.principal, args["contact_id"], changes)


@tool(
    name="crm_delete_contact",
    title="Delete a contact",
    description="Permanently delete a contact and its notes.",
    input_schema={
        "type": "object",
        "properties": {"contact_id": CONTACT_ID},
        "required": ["contact_id"],
        "additionalProperties": False,
    },
    scopes=("crm.admin",),
    read_only=False,
    destructive=True,
)
def delete_contact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _call(services.delete_contact, ctx.principal, args["contact_id"])
