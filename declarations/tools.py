"""Tools are declared in code, each with its scope decision; the tenant's matrix may tighten or
loosen the scopes later (mcp_tools.selectors, mcp_tools.services), but a tool without a decision
cannot be registered.

Apps declare their tools in their ``tools.py`` with ``@tool``; the scopes they name may be declared
by any app, so they are checked once everything is discovered (``check_declared_scopes``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import fastjsonschema
from jsonschema import validators

from declarations.principal import ToolContext
from declarations.scopes import unknown


class _NoAuth:
    """The explicit decision that a tool needs no authorization."""

    def __repr__(self) -> str:
        return "NOAUTH"


NOAUTH = _NoAuth()

Handler = Callable[[ToolContext, dict[str, Any]], dict[str, Any]]


class ToolArgumentError(Exception):
    """Arguments that pass the schema but name something that does not exist (here)."""


# the classes a ToolConnectorError carries in its structured answer (never HTTP 401/403 challenges)
CONNECTOR_REAUTH_REQUIRED = "CONNECTOR_REAUTH_REQUIRED"
CONNECTOR_UNAVAILABLE = "CONNECTOR_UNAVAILABLE"
CONNECTOR_CLASSES = frozenset({CONNECTOR_REAUTH_REQUIRED, CONNECTOR_UNAVAILABLE})


class ToolConnectorError(Exception):
    """The tool needs a connected account that is missing, needs re-authorization or whose provider
    is unavailable. Not an auth failure of the MCP token: the endpoint answers an ``isError`` result
    whose ``structuredContent`` carries ``structured`` (class, provider, reason, connect URL)."""

    def __init__(self, message: str, structured: dict[str, Any]) -> None:
        super().__init__(message)
        self.structured = structured


@dataclass(frozen=True, eq=False)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    scopes: tuple[str, ...]  # empty together with noauth=True
    noauth: bool
    read_only: bool
    destructive: bool
    needs_connector: str | None
    handler: Handler = field(compare=False)
    # exactly-once: the tool writes at a provider (outside this database); see mcp_tools.idempotency
    writes_upstream: bool = False
    # client capabilities the tool cannot run without (e.g. "sampling"): a call from a client that did
    # not declare them is refused with -32021 (mcp_tools.capabilities), never run on an assumption
    client_capabilities: tuple[str, ...] = ()

    @cached_property
    def validator(self) -> Any:
        """Built once: ``jsonschema.validate`` would re-check the schema itself on every call."""
        cls = validators.validator_for(self.input_schema)
        cls.check_schema(self.input_schema)
        return cls(self.input_schema)

    @cached_property
    def quick_check(self) -> Callable[[Any], Any] | None:
        """The input schema compiled to Python by fastjsonschema (~1 µs a call where ``validator``
        takes ~14), or None where the schema uses a keyword outside ``QUICK_KEYWORDS``."""
        if not _quick_keywords_only(self.input_schema):
            return None
        return fastjsonschema.compile(self.input_schema, use_default=False)  # never writes defaults in

    def quickly_accepted(self, arguments: Any) -> bool:
        """True only when the compiled check accepts; anything else goes to ``validator``, which decides
        and words the error, so the two need agree only on what this accepts
        (``tests/test_tool_arguments.py``)."""
        if self.quick_check is None:
            return False
        try:
            self.quick_check(arguments)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    @property
    def enabled_by_default(self) -> bool:
        # a no-auth tool makes the tenant's endpoint answer anonymous callers: opt-in per tenant
        return not self.noauth

    @property
    def is_write(self) -> bool:
        return not self.read_only


# keywords whose meaning is the same in draft-07 (fastjsonschema) and 2020-12 (jsonschema's default)
QUICK_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "minimum", "maximum", "exclusiveMinimum"}
    | {"exclusiveMaximum", "minLength", "maxLength", "pattern", "enum", "const", "items", "minItems"}
    | {"maxItems", "uniqueItems", "description", "title", "default", "examples"}
)


def _quick_keywords_only(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not schema.keys() <= QUICK_KEYWORDS:
        return False
    subschemas = list(schema.get("properties", {}).values())
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), (dict, bool)):
            subschemas.append(schema[key])
    if isinstance(schema.get("items"), list):
        return False  # tuple form: draft-07 items, 2020-12 prefixItems
    return all(_quick_keywords_only(sub) for sub in subschemas)


_REGISTRY: dict[str, ToolSpec] = {}


def arguments_schema(properties: dict[str, Any], *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A tool's ``input_schema``: an object of these properties and no others."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    return schema


def tool(
    *,
    name: str,
    title: str,
    description: str,
    input_schema: dict[str, Any],
    scopes: tuple[str, ...] | _NoAuth,
    read_only: bool,
    destructive: bool = False,
    output_schema: dict[str, Any] | None = None,
    needs_connector: str | None = None,
    writes_upstream: bool = False,
    client_capabilities: tuple[str, ...] = (),
) -> Callable[[Handler], Handler]:
    if scopes is NOAUTH:
        scope_names: tuple[str, ...] = ()
        noauth = True
    else:
        if not isinstance(scopes, tuple) or not scopes:
            raise TypeError(f"tool {name!r}: scopes must be a non-empty tuple of scope names, or NOAUTH")
        scope_names, noauth = scopes, False
    if noauth and not read_only:
        raise ValueError(f"tool {name!r}: a write tool cannot be NOAUTH")
    if writes_upstream and read_only:
        raise ValueError(f"tool {name!r}: a tool that writes upstream is not read-only")

    def register(handler: Handler) -> Handler:
        if name in _REGISTRY:
            raise ValueError(f"tool {name!r} registered twice")
        _REGISTRY[name] = ToolSpec(
            name=name,
            title=title,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            scopes=scope_names,
            noauth=noauth,
            read_only=read_only,
            destructive=destructive,
            needs_connector=needs_connector,
            handler=handler,
            writes_upstream=writes_upstream,
            client_capabilities=client_capabilities,
        )
        return handler

    return register


def all_tools() -> dict[str, ToolSpec]:
    return dict(_REGISTRY)


def get_tool(name: str) -> ToolSpec | None:
    return _REGISTRY.get(name)


def check_declared_scopes() -> None:
    """Every scope a tool names must be declared (by the app that owns it, in its ``scopes.py``)."""
    for spec in _REGISTRY.values():
        if bad := unknown(spec.scopes):
            raise ValueError(
                f"tool {spec.name!r}: unknown scopes {bad}; declare them in the scopes.py of the app that owns them"
            )
