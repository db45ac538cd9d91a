"""The tenant's MCP endpoint (Streamable HTTP, JSON responses, no SSE, no sessions)."""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as t
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from mcp_types import jsonrpc

from declarations.scopes import base_scopes
from mcp_tools import capabilities, cors, observe, protocol
from mcp_tools.auth import Caller, admit, bearer_token
from mcp_tools.challenges import AUTH_ERROR_CODE, AuthClass, AuthFailure
from mcp_tools.execution import ToolCall, required_failure
from mcp_tools.idempotency import call_tool_once, requested_key, tool_meta
from mcp_tools.protocol import Answered, Incoming, ProtocolError
from mcp_tools.selectors import EffectivePolicy, effective_policies, policy_for
from mcp_tools.stepup import note_http_challenge
from oauth.issuer import resource_metadata_url
from oauth.models import ChallengeChannel

logger = logging.getLogger(__name__)

SERVER_VERSION = "0.1.0"
TOOLS_LIST_TTL_MS = 60_000


def _auth_error(failure: AuthFailure, request: HttpRequest, request_id: Any) -> HttpResponse:
    if not getattr(request, "challenge_observed", False):  # observability: metrics + audit trail
        observe.challenged(request, failure, "http", None)
    metadata = resource_metadata_url(request)
    challenge = failure.http_challenge(metadata)
    error = ProtocolError(
        AUTH_ERROR_CODE, failure.description, {**failure.structured(), "www_authenticate": challenge}, request_id
    )
    return protocol.json_response(error.body(), failure.kind.status, WWW_Authenticate=challenge)


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    """Every answer gets its CORS headers from ``mcp_tools.middleware.McpCorsMiddleware``, routing's
    answers on this path included."""
    incoming: Incoming | None = None
    try:
        incoming = _transport(request)
        token = bearer_token(request)  # the one read of the Authorization header: the value travels on
        caller = admit(request, token, incoming.tool_name)  # confirms the tenant (tenants.routing)
        return _dispatch(request, incoming, caller, token)
    except Answered as answered:
        # an answer before the bearer statement leaves the tenant unconfirmed: routing confirms it
        # afterwards (tenants.middleware), so a deactivated or deleted tenant's refusal comes first
        return answered.response
    except ProtocolError as error:
        return protocol.json_response(error.body(), error.http_status)
    except AuthFailure as failure:
        return _auth_error(failure, request, incoming.request_id if incoming else None)


def _transport(request: HttpRequest) -> Incoming:
    """Host, Origin, CORS preflight, method, size, content type and the JSON-RPC message; every refusal
    (and a notification's 202) is raised as ``Answered``, a malformed message as ``ProtocolError``."""
    # DNS-rebinding protection: the Host (against ALLOWED_HOSTS; in development routing checked it
    # already, tenants.hosts; DisallowedHost is Django's 400), then the Origin, which gets no CORS
    # headers when refused
    request.get_host()
    answer = cors.gate(request)  # an Origin not admitted (403, no CORS headers) or a CORS preflight
    if answer is not None:
        raise Answered(answer)
    if request.method != "POST":
        raise protocol.refused("Use POST (this server keeps no SSE streams)", 405, Allow="POST")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit():
        raise protocol.refused("Invalid Content-Length", 400)
    if int(length) > settings.MCP_MAX_BODY_BYTES:
        raise protocol.refused("Request body too large", 413)
    if request.content_type != "application/json":
        raise protocol.refused("Content-Type must be application/json", 415)
    incoming = protocol.parse(request.body, protocol.mcp_headers(request.META))
    if incoming.is_notification:
        raise Answered(HttpResponse(status=202))
    return incoming


def _dispatch(request: HttpRequest, incoming: Incoming, caller: Caller, token: str | None) -> HttpResponse:
    allowed = protocol.MODERN_METHODS if incoming.modern else protocol.HANDSHAKE_METHODS
    if incoming.method not in allowed:
        raise ProtocolError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {incoming.method}", None, incoming.request_id)
    params = protocol.typed_params(incoming)
    tenant = request.tenant
    server_info = {"name": f"{tenant.name} MCP", "version": SERVER_VERSION}

    if incoming.method == "tools/call":
        return _tools_call(request, incoming, caller, token, params, server_info)
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


def _tools_call(
    request: HttpRequest, incoming: Incoming, caller: Caller, token: str | None, params: Any, server_info: dict
) -> HttpResponse:
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
        observe.tool_called(request, caller, params.name, result)
    except AuthFailure as failure:
        channel = "tool_result" if caller.channel == ChallengeChannel.TOOL_RESULT else "http"
        observe.challenged(request, failure, channel, caller, params.name)
        request.challenge_observed = True
        if channel == "http":
            note_http_challenge(token, failure)
            raise
        logger.info("tools/call %s refused: %s", params.name, failure.kind.name)
        result = failure.tool_result(resource_metadata_url(request))
    return protocol.tool_answer(incoming, result, server_info)
