"""The tenant's MCP endpoint (Streamable HTTP, JSON responses, no SSE, no sessions)."""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as t
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from mcp_types import jsonrpc

from declarations.scopes import base_scopes
from mcp_tools import capabilities, observe, protocol
from mcp_tools.auth import Caller, TenantRefused, anonymous, authenticate, bearer_token
from mcp_tools.challenges import AUTH_ERROR_CODE, AuthClass, AuthFailure
from mcp_tools.cors import origin_allowed, preflight, with_cors
from mcp_tools.elicitation import for_request
from mcp_tools.execution import required_failure, tool_result_challenge
from mcp_tools.idempotency import call_tool_once, tool_meta
from mcp_tools.protocol import Incoming, ProtocolError
from mcp_tools.selectors import EffectivePolicy, effective_policies, load_policy, policy_for
from mcp_tools.stepup import note_http_challenge
from oauth.issuer import resource_metadata_url
from oauth.models import ChallengeChannel
from tenants.routing import confirm_tenant_now

logger = logging.getLogger(__name__)

SERVER_VERSION = "0.1.0"
TOOLS_LIST_TTL_MS = 60_000


# Built once: ``JsonResponse`` makes a new encoder per response, a cost on every call (issue 14).
# DjangoJSONEncoder, as JsonResponse uses; the bodies are JSON-native (pydantic dumps in "json" mode).
_ENCODE = DjangoJSONEncoder(ensure_ascii=False).encode
_ENCODE_FINITE = DjangoJSONEncoder(ensure_ascii=False, allow_nan=False).encode
_ENCODE_ASCII = DjangoJSONEncoder().encode


def _json(body: dict[str, Any], status: int = 200, *, finite: bool = False, **headers: str) -> HttpResponse:
    """The JSON body as ``JsonResponse`` would write it, without its per-response set-up.
    ``finite``: raise ValueError for a NaN or infinity instead of writing it."""
    try:
        content = (_ENCODE_FINITE if finite else _ENCODE)(body).encode()
    except UnicodeEncodeError:  # a lone surrogate that got past protocol.parse: escape rather than fail
        content = _ENCODE_ASCII(body).encode()
    response = HttpResponse(content, status=status, content_type="application/json")
    # what CommonMiddleware adds to the other views' answers (this one answers before it): without
    # it, gunicorn frames the body as chunks, an extra write per response
    response["Content-Length"] = str(len(content))
    response["Cache-Control"] = "no-store"
    for key, value in headers.items():
        response[key.replace("_", "-")] = value
    return response


def _protocol_error(error: ProtocolError) -> HttpResponse:
    return _json(error.body(), error.http_status)


def _auth_error(failure: AuthFailure, request: HttpRequest, request_id: Any) -> HttpResponse:
    if not getattr(request, "challenge_observed", False):  # observability: metrics + audit trail
        observe.challenged(request, failure, "http", None)
    metadata = resource_metadata_url(request)
    challenge = failure.http_challenge(metadata)
    error = ProtocolError(
        AUTH_ERROR_CODE, failure.description, {**failure.structured(), "www_authenticate": challenge}, request_id
    )
    return _json(error.body(), failure.kind.status, WWW_Authenticate=challenge)


class _Answer(Exception):
    """An answer given before the bearer statement (transport and protocol errors, notifications)."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _refused(request: HttpRequest, message: str, status: int, **headers: str) -> _Answer:
    body = ProtocolError(jsonrpc.INVALID_REQUEST, message).body()
    return _Answer(with_cors(request, _json(body, status, **headers)))


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    try:
        incoming = _transport(request)
    except _Answer as answer:
        # routing left the tenant check to this view (tenants.routing.confirm_tenant): a deactivated
        # or deleted tenant is refused before any other answer, as routing itself would
        return confirm_tenant_now(request) or answer.response
    return with_cors(request, _handle(request, incoming))


def _transport(request: HttpRequest) -> Incoming:
    """Host, Origin, CORS preflight, method, size, content type and the JSON-RPC message; every refusal
    (and a notification's 202) is raised as an ``_Answer``."""
    # DNS-rebinding protection: the Host (against ALLOWED_HOSTS; in development routing checked it
    # already, tenants.hosts; DisallowedHost is Django's 400), then the Origin, which gets no CORS
    # headers when refused
    request.get_host()
    if not origin_allowed(request):
        raise _Answer(_json(ProtocolError(jsonrpc.INVALID_REQUEST, "Origin not allowed").body(), 403))
    if request.method == "OPTIONS" and "HTTP_ORIGIN" in request.META:
        raise _Answer(preflight(request))
    if request.method != "POST":
        raise _refused(request, "Use POST (this server keeps no SSE streams)", 405, Allow="POST")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit():
        raise _refused(request, "Invalid Content-Length", 400)
    if int(length) > settings.MCP_MAX_BODY_BYTES:
        raise _refused(request, "Request body too large", 413)
    if request.content_type != "application/json":
        raise _refused(request, "Content-Type must be application/json", 415)
    try:
        incoming = protocol.parse(request.body, _mcp_headers(request))
    except ProtocolError as error:
        raise _Answer(with_cors(request, _protocol_error(error))) from None
    if incoming.is_notification:
        raise _Answer(with_cors(request, HttpResponse(status=202)))
    return incoming


def _mcp_headers(request: HttpRequest) -> dict[str, str]:
    """The ``Mcp-*`` request headers by lower-case name, all that ``protocol.parse`` reads (the
    version, method and name headers): ``request.headers`` would parse every header of the request."""
    return {
        key[5:].replace("_", "-").lower(): value for key, value in request.META.items() if key.startswith("HTTP_MCP_")
    }


def _handle(request: HttpRequest, incoming: Incoming) -> HttpResponse:
    token = bearer_token(request)
    caller: Caller | None = None
    if token is not None:
        tool_name = None
        if incoming.method == "tools/call" and isinstance(incoming.message.params, dict):
            name = incoming.message.params.get("name")
            tool_name = name if isinstance(name, str) else None
        try:
            # the tenant row comes back with the token: confirmed (active, still there) here
            caller = authenticate(request, token, tool_name)
        except TenantRefused as refused:
            return refused.response
        except AuthFailure as failure:
            return _auth_error(failure, request, incoming.request_id)
    else:
        refusal = confirm_tenant_now(request)
        if refusal is not None:
            return refusal
    try:
        return _dispatch(request, incoming, caller)
    except ProtocolError as error:
        return _protocol_error(error)
    except AuthFailure as failure:
        return _auth_error(failure, request, incoming.request_id)


def _dispatch(request: HttpRequest, incoming: Incoming, caller: Caller | None) -> HttpResponse:
    allowed = protocol.MODERN_METHODS if incoming.modern else protocol.HANDSHAKE_METHODS
    if incoming.method not in allowed:
        raise ProtocolError(jsonrpc.METHOD_NOT_FOUND, f"Method not found: {incoming.method}", None, incoming.request_id)
    params = protocol.typed_params(incoming)
    tenant = request.tenant
    server_info = {"name": f"{tenant.name} MCP", "version": SERVER_VERSION}

    if incoming.method == "tools/call":
        return _tools_call(request, incoming, caller, params, server_info)
    policies = effective_policies()
    if caller is None and not any(p.enabled and p.noauth for p in policies.values()):
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
    return _json(protocol.result_body(incoming, result, server_info=server_info))


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
    return _json(body)


def _tools_call(request, incoming, caller, params, server_info) -> HttpResponse:
    # the matrix row came with the token when there is one; anonymous callers read it here
    policy = policy_for(params.name, caller.tool_policy) if caller else load_policy(params.name)
    if policy is None or not policy.enabled:
        raise ProtocolError(jsonrpc.INVALID_PARAMS, f"Unknown tool: {params.name}", None, incoming.request_id)
    effective_caller = caller or anonymous(request.tenant)
    try:
        failure = required_failure(caller, policy)
        if failure is not None:
            raise failure
        capabilities.require(incoming, params, policy.spec)  # -32021 for an undeclared one it needs
        # exactly-once (issue 13): with an idempotency key in _meta, a write tool runs once per key;
        # connector reconnects become a URL elicitation where the client supports it (issue 10)
        meta = incoming.message.params.get("_meta") if isinstance(incoming.message.params, dict) else None
        elicitation = for_request(incoming, params)
        arguments = params.arguments or {}
        result = call_tool_once(effective_caller, policy, arguments, meta, incoming.request_id, elicitation)
        observe.tool_called(request, effective_caller, params.name, result)
    except AuthFailure as failure:
        channel = "http" if caller is None or caller.channel != ChallengeChannel.TOOL_RESULT else "tool_result"
        observe.challenged(request, failure, channel, caller, params.name)
        request.challenge_observed = True
        if channel == "http":
            note_http_challenge(request, failure)
            raise
        logger.info("tools/call %s refused: %s", params.name, failure.kind.name)
        result = tool_result_challenge(failure, resource_metadata_url(request))
    return _tool_answer(incoming, result, server_info)


def _tool_answer(incoming: Incoming, result: Any, server_info: dict[str, str]) -> HttpResponse:
    """A plain tool result goes out in ``protocol.plain_tool_result``'s direct form; should its
    structured content hold a NaN or infinity (not JSON), the version schema's dump, which writes null."""
    try:
        return _json(protocol.result_body(incoming, result, server_info=server_info), finite=True)
    except ValueError:
        return _json(protocol.result_body(incoming, result, server_info=server_info, plain=False))
