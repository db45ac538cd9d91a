"""The CRM's MCP tools (found by autodiscovery of ``tools`` modules) and how they present a contact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm import selectors, services
from crm.errors import NotFound
from crm.models import Contact, Note
from declarations.principal import ToolContext
from declarations.tools import ToolArgumentError, arguments_schema, tool

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


def contact_data(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "name": contact.name,
        "email": contact.email,
        "company": contact.company,
        "phone": contact.phone,
    }


def contact_with_notes_data(contact: Contact, notes: list[Note]) -> dict[str, Any]:
    data = contact_data(contact)
    data["notes"] = [{"id": n.pk, "body": n.body, "created_at": n.created_at.isoformat()} for n in notes]
    return data


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except NotFound as exc:
        raise ToolArgumentError(str(exc)) from exc


@tool(
    name="crm_search_contacts",
    title="Search contacts",
    description="Search this workspace's CRM contacts by name, email or company.",
    input_schema=arguments_schema(
        {
            "query": {"type": "string", "maxLength": 200},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        }
    ),
    output_schema={
        "type": "object",
        "properties": {"contacts": {"type": "array", "items": CONTACT}},
        "required": ["contacts"],
    },
    scopes=("crm.read",),
    read_only=True,
)
def search_contacts(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    found = selectors.search_contacts(ctx.principal, query=args.get("query", ""), limit=args.get("limit", 20))
    return {"contacts": [contact_data(c) for c in found]}


@tool(
    name="crm_get_contact",
    title="Get a contact",
    description="Fetch one contact with its latest notes.",
    input_schema=arguments_schema({"contact_id": CONTACT_ID}, required=("contact_id",)),
    scopes=("crm.read",),
    read_only=True,
)
def get_contact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    contact, notes = _call(selectors.get_contact, ctx.principal, contact_id=args["contact_id"])
    return contact_with_notes_data(contact, notes)


@tool(
    name="crm_create_note",
    title="Add a note",
    description="Add a note to a contact.",
    input_schema=arguments_schema(
        {"contact_id": CONTACT_ID, "body": {"type": "string", "minLength": 1, "maxLength": 5000}},
        required=("contact_id", "body"),
    ),
    scopes=("crm.write",),
    read_only=False,
)
def create_note(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    note = _call(services.create_note, principal=ctx.principal, contact_id=args["contact_id"], body=args["body"])
    return {"id": note.pk, "contact_id": note.contact_id, "body": note.body}


@tool(
    name="crm_update_contact",
    title="Update a contact",
    description="Change a contact's name, email, company or phone.",
    input_schema=arguments_schema(
        {
            "contact_id": CONTACT_ID,
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "maxLength": 254},
            "company": {"type": "string", "maxLength": 200},
            "phone": {"type": "string", "maxLength": 50},
        },
        required=("contact_id",),
    ),
    output_schema=CONTACT,
    scopes=("crm.write",),
    read_only=False,
)
def update_contact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    changes = {k: v for k, v in args.items() if k != "contact_id"}
    contact = _call(services.update_contact, principal=ctx.principal, contact_id=args["contact_id"], changes=changes)
    return contact_data(contact)


@tool(
    name="crm_delete_contact",
    title="Delete a contact",
    description="Permanently delete a contact and its notes.",
    input_schema=arguments_schema({"contact_id": CONTACT_ID}, required=("contact_id",)),
    scopes=("crm.admin",),
    read_only=False,
    destructive=True,
)
def delete_contact(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    _call(services.delete_contact, principal=ctx.principal, contact_id=args["contact_id"])
    return {"id": args["contact_id"], "deleted": True}
