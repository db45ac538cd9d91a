"""``tools/call``: the execution-time checks, in order, then the handler.

By the time this runs, the token has been checked *now* (exists, unexpired, audience) and the tenant
is active (routing refuses inactive tenants); here: membership (in the token query), the caller's
scopes against the tenant's *current* matrix, the arguments against the tool's schema; the handler's
domain service then re-checks tenant membership inside its write transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import mcp_types as t
from mcp_types import jsonrpc

from declarations.principal import ToolContext
from declarations.scopes import base_scopes
from declarations.tools import ToolArgumentError, ToolConnectorError, ToolSpec
from mcp_tools.auth import Caller
from mcp_tools.capabilities import Elicitation, connector_result
from mcp_tools.challenges import AuthClass, AuthFailure
from mcp_tools.protocol import ProtocolError
from mcp_tools.selectors import EffectivePolicy
from tenants.guard import TenantGuardError

logger = logging.getLogger(__name__)
# the text block's JSON, as json.dumps(ensure_ascii=False) writes it, without a new encoder per call
_TEXT = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class ToolCall:
    """One ``tools/call`` as the endpoint admitted it: who calls, the tool's policy in this tenant now,
    the arguments, the request's idempotency key (a write tool's; None otherwise) and id, and what the
    client can answer (URL elicitation). Built once in the view; idempotency and execution read it."""

    caller: Caller
    policy: EffectivePolicy
    arguments: dict[str, Any]
    request_id: Any
    idempotency_key: str | None = None
    elicitation: Elicitation = field(default_factory=Elicitation)

    @property
    def spec(self) -> ToolSpec:
        return self.policy.spec


def required_failure(caller: Caller, policy: EffectivePolicy) -> AuthFailure | None:
    if policy.noauth:
        return None
    needed = set(policy.scopes)
    if caller.is_anonymous:
        return AuthFailure(
            AuthClass.AUTH_REQUIRED,
            "Authorization is required to call this tool",
            tuple(sorted(needed | set(base_scopes()))),
        )
    granted = caller.principal.scopes
    if not needed <= granted:
        missing = ", ".join(sorted(needed - granted))
        return AuthFailure(
            AuthClass.INSUFFICIENT_SCOPE,
            f"This tool needs the scope(s): {missing}",
            tuple(sorted(granted | needed)),  # keep what was granted: step-up, not swap
        )
    return None


def check_arguments(spec: ToolSpec, arguments: dict[str, Any], request_id: Any) -> None:
    if spec.quickly_accepted(arguments):
        return
    error = next(iter(spec.validator.iter_errors(arguments)), None)
    if error is not None:
        raise ProtocolError(
            jsonrpc.INVALID_PARAMS, f"Invalid arguments for {spec.name}: {error.message}", None, request_id
        )


def call_tool(
    call: ToolCall, *, upstream_idempotency_key: str | None = None
) -> t.CallToolResult | t.InputRequiredResult:
    """The handler, on arguments already checked (``check_arguments``, by ``mcp_tools.idempotency``)."""
    spec, principal = call.spec, call.caller.principal
    try:
        output = spec.handler(ToolContext(principal, upstream_idempotency_key), call.arguments)
    except TenantGuardError as exc:
        raise AuthFailure(AuthClass.TENANT_MISMATCH, "The caller no longer belongs to this tenant") from exc
    except ToolArgumentError as exc:
        return t.CallToolResult(content=[t.TextContent(type="text", text=str(exc))], is_error=True)
    except ToolConnectorError as exc:  # a connected account to (re)connect: never a 401/403 challenge
        return connector_result(exc, call.elicitation)  # URL elicitation or isError (mcp_tools.capabilities)
    except Exception:
        logger.exception("tool %s failed (request %s)", spec.name, principal.request_id)
        return t.CallToolResult(
            content=[t.TextContent(type="text", text=f"The tool failed (request {principal.request_id})")],
            is_error=True,
        )
    return t.CallToolResult(
        content=[t.TextContent(type="text", text=_TEXT(output))],
        structured_content=output,
        is_error=False,
    )
