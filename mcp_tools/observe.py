"""What the MCP endpoint reports to observability: challenges (metrics + audit trail, both channels;
those before any client is known, such as a missing or unknown token, are counted per minute in the
trail, not stored one by one) and tool calls (metrics; audit only for denials and sampled
successes). Called from ``views`` in one line per place, so the endpoint reads as before."""

from __future__ import annotations

import mcp_types as t

from declarations.tools import CONNECTOR_CLASSES, CONNECTOR_REAUTH_REQUIRED
from mcp_tools.auth import Caller
from mcp_tools.challenges import AuthFailure
from mcp_tools.edge import Edge
from observability import audit, metrics


def challenged(edge: Edge, failure: AuthFailure, channel: str, caller: Caller | None, tool: str = "") -> None:
    tenant = edge.tenant_slug
    metrics.challenge(tenant, failure.kind.name, channel)
    if tool:
        metrics.tool_call(tenant, tool, "denied")
    principal = caller.principal if caller is not None and not caller.is_anonymous else None
    # a token that was found but refused (expired, audience, not a member) still names its user and client
    subject = (principal.user_id, principal.client_id) if principal else failure.subject
    if subject is None:
        # no client is known (no credentials, a malformed header, a token that does not exist): one
        # aggregated row per class and minute, so a flood of made-up tokens cannot fill the trail
        audit.record_unattributed(event="challenge", auth_class=failure.kind.name, outcome=channel)
        return
    user_id, client_id = subject
    audit.record_from(
        event="challenge",
        auth_class=failure.kind.name,
        outcome=channel,
        user_id=user_id,
        client_id=client_id,
        tool=tool,
        request_id_value=edge.request_id,
        source_address=edge.source_address,
    )


def tool_called(edge: Edge, caller: Caller, tool: str, result: t.CallToolResult | t.InputRequiredResult) -> None:
    if isinstance(result, t.InputRequiredResult):  # a URL elicitation to (re)connect an account
        connector_class, is_error = CONNECTOR_REAUTH_REQUIRED, True
    else:
        structured = result.structured_content if isinstance(result.structured_content, dict) else {}
        is_error = bool(result.is_error)
        connector_class = structured.get("class") if is_error else None
    if not is_error:
        outcome = "ok"
    elif connector_class in CONNECTOR_CLASSES:
        outcome = "connector"
    else:
        outcome = "tool_error"
    tenant = edge.tenant_slug
    metrics.tool_call(tenant, tool, outcome)
    if outcome == "connector":  # a connector challenge: always the tool-result channel
        metrics.challenge(tenant, connector_class, "tool_result")
    elif outcome == "ok" and not audit.sample_tool_call():
        return
    principal = caller.principal
    audit.record_from(
        event="challenge" if outcome == "connector" else "tool_call",
        auth_class=connector_class if outcome == "connector" else "",
        outcome="tool_result" if outcome == "connector" else outcome,
        user_id=principal.user_id,
        client_id=principal.client_id,
        tool=tool,
        request_id_value=edge.request_id,
        source_address=edge.source_address,
    )
