"""The endpoint's JSON-RPC methods (``initialize``, ``ping``, ``server/discover``, ``tools/list``,
``tools/call``) for a request the view has read (``mcp_tools.edge.Edge``) and routing has confirmed
the tenant of: the caller from the bearer statement, then the method; an auth failure is answered in
its channel (``mcp_tools.challenges``) and reported (``mcp_tools.observe``)."""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as t
from django.http import HttpResponse
from mcp_types import jsonrpc

from declarations.scopes import base_scopes
from mcp_tools import capabilities, observe, protocol
from mcp_tools.auth import Caller, Statement, admit
from mcp_tools.challenges import AUTH_ERROR_CODE, AuthClass, AuthFailure
from mcp_tools.edge import Edge
from mcp_tools.execution import ToolCall, required_failure
from mcp_tools.idempotency import call_tool_once, requested_key, tool_meta
from mcp_tools.protocol import Incoming, ProtocolError
from mcp_tools.selectors import EffectivePolicy, effective_policies, policy_for
from mcp_tools.stepup import note_http_challenge
from oauth.models import ChallengeChannel
from oauth.selectors import challenge_channel_of

logger = logging.getLogger(__name__)

SERVER_VERSION = "0.1.0"
TOOLS_LIST_TTL_MS = 60_000


def serve(edge: Edge, statement: Statement) -> HttpResponse:
    """The answer to ``edge``, given the bearer statement of a tenant routing has confirmed."""
    try:
        caller = admit(statement, edge)
        return _dispatch(edge, caller)
    except AuthFailure as failure:  # the token, or a method other than tools/call: always the HTTP channel
        observe.challenged(edge, failure, "http", None)  # observability: metrics + audit trail
        return _challenge_answer(failure, edge)


def _challenge_answer(failure: AuthFailure, edge: Edge) -> HttpResponse:
    """The HTTP channel: 401/403 with ``WWW-Authenticate``, the class in the JSON-RPC error; an
    ``insufficient_scope`` is recorded against the token's family (``mcp_tools.stepup``)."""
    note_http_challenge(edge.token, failure)
    challenge = failure.http_challenge(edge.resource_metadata)
    error = ProtocolError(
        AUTH_ERROR_CODE,
        failure.description,
        {**failure.structured(), "www_authenticate": challenge},
        edge.incoming.request_id,
    )
    return protocol.json_response(error.body(), failure.kind.status, WWW_Authenticate=challenge)


def _dispatch(edge: Edge, caller: Caller) -> HttpResponse:
    incoming = edge.incoming
    allowed = protocol.MODERN_METHODS if incoming.modern else protocol.HANDSHAKE_METHODS
    if incoming.method not in allowed:
        raise ProtocolError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {incoming.method}", None, incoming.request_id)
    params = protocol.typed_params(incoming)
    tenant = caller.tenant
    server_info = {"name": f"{tenant.name} MCP", "version": SERVER_VERSION}

    if incoming.method == "tools/call":
        return _tools_call(edge, caller, params, server_info)
    policies = effective_policies()
    if caller.is_anonymous and not any(p.enabled and p.noauth for p in policies.values()):
        raise AuthFailure(AuthClass.AUTH_REQUIRED, "Authorization is required", base_scopes())

    if incoming.method == "initialize":
        result: Any = t.InitializeResult(
            protocol_version=protocol.negotiate(params.protocol_version),
            capabilities=t.ServerCapabilities(tools=t.ToolsCapability(list_changed=False)),
            server_info=t.Implementation(**server_info),
            instructions=f"Tools for the {tenant.name} workspace.",
        )
    elif incoming.method == "server/discover":
        result = t.DiscoverResult(
            supported_versions=list(protocol.MODERN_VERSIONS),
            capabilities=t.ServerCapabilities(tools=t.ToolsCapability(list_changed=False)),
            instructions=f"Tools for the {tenant.name} workspace.",
            ttl_ms=TOOLS_LIST_TTL_MS,
            cache_scope="public",
        )
    elif incoming.method == "ping":
        result = {}
    else:  # tools/list
        return _tools_list(incoming, policies, server_info)
    return protocol.json_response(protocol.result_body(incoming, result, server_info=server_info))


def _tools_list(incoming: Incoming, policies: dict[str, EffectivePolicy], server_info: dict) -> HttpResponse:
    enabled = [p for p in policies.values() if p.enabled]
    tools = [
        t.Tool(
            name=p.spec.name,
            title=p.spec.title,
            description=p.spec.description,
            input_schema=p.spec.input_schema,
            output_schema=p.spec.output_schema,
            annotations=t.ToolAnnotations(
                title=p.spec.title, read_only_hint=p.spec.read_only, destructive_hint=p.spec.destructive
            ),
            _meta={"securitySchemes": p.security_schemes, **tool_meta(p.spec.is_write)},  # + idempotency key
        )
        for p in enabled
    ]
    # private: the list reflects this tenant's matrix and is served per caller
    result = t.ListToolsResult(tools=tools, ttl_ms=TOOLS_LIST_TTL_MS, cache_scope="private")
    body = protocol.result_body(incoming, result, server_info=server_info)
    schemes = {p.spec.name: p.security_schemes for p in enabled}
    for item in body["result"]["tools"]:
        item["securitySchemes"] = schemes[item["name"]]  # OpenAI Apps SDK reads the top-level field
    return protocol.json_response(body)


def _tools_call(edge: Edge, caller: Caller, params: Any, server_info: dict) -> HttpResponse:
    incoming = edge.incoming
    policy = policy_for(params.name, caller.tool_policy)  # the matrix row came with the bearer statement
    if policy is None or not policy.enabled:
        raise ProtocolError(jsonrpc.INVALID_PARAMS, f"Unknown tool: {params.name}", None, incoming.request_id)
    try:
        failure = required_failure(caller, policy)
        if failure is not None:
            raise failure
        capabilities.require(incoming, params, policy.spec)  # -32021 for an undeclared one it needs
        # connector reconnects become a URL elicitation where the client supports it; a write tool runs
        # once per idempotency key (exactly-once)
        meta = incoming.message.params.get("_meta") if isinstance(incoming.message.params, dict) else None
        elicitation = capabilities.for_request(incoming, params)
        key = requested_key(meta, incoming.request_id) if policy.spec.is_write else None
        call = ToolCall(caller, policy, params.arguments or {}, incoming.request_id, key, elicitation)
        result = call_tool_once(call)
        observe.tool_called(edge, caller, params.name, result)
    except AuthFailure as failure:
        in_result = challenge_channel_of(caller.application_id) == ChallengeChannel.TOOL_RESULT
        channel = "tool_result" if in_result else "http"
        observe.challenged(edge, failure, channel, caller, params.name)
        if channel == "http":
            return _challenge_answer(failure, edge)
        logger.info("tools/call %s refused: %s", params.name, failure.kind.name)
        result = failure.tool_result(edge.resource_metadata)
    return protocol.tool_answer(incoming, result, server_info)
