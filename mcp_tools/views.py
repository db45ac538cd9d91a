"""The tenant's MCP endpoint (Streamable HTTP, JSON responses, no SSE, no sessions): the HTTP side.

The view alone holds the ``HttpRequest``: the transport checks, then what the layers below need of
the request, read once into ``mcp_tools.edge.Edge``; the bearer statement (``mcp_tools.auth``),
whose tenant row routing confirms (``tenants.routing.confirm_tenant``); then the methods
(``mcp_tools.dispatch``)."""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from mcp_tools import cors, protocol
from mcp_tools.auth import bearer_statement, bearer_token
from mcp_tools.dispatch import serve
from mcp_tools.edge import Edge
from mcp_tools.protocol import Answered, Incoming, ProtocolError
from oauth.issuer import mcp_resource
from tenants.http import peer
from tenants.routing import confirm_tenant


@csrf_exempt
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    """Every answer gets its CORS headers from ``mcp_tools.middleware.McpCorsMiddleware``, routing's
    answers on this path included."""
    try:
        # DNS-rebinding protection first: the resource is built from the Host, read through get_host,
        # which checks it against ALLOWED_HOSTS (in development routing checked it already,
        # tenants.hosts; DisallowedHost is Django's 400); then the Origin, in the transport checks
        resource = mcp_resource(request)
        edge = Edge(
            incoming=_transport(request),
            token=bearer_token(request.META.get("HTTP_AUTHORIZATION", "")),  # the one read of the header
            tenant_slug=request.tenant.schema_name,
            resource=resource,
            peer=peer(request),  # parsed into an address only for an audit row (Edge.source_address)
            request_id=os.urandom(16).hex(),  # 32 hex digits, as uuid4().hex, without building a UUID
        )
        statement = bearer_statement(edge)
        # routing's rule, on the tenant row the statement read now: a deactivated or deleted tenant's
        # refusal comes before anything else
        refusal = confirm_tenant(request, statement.tenant)
        return refusal if refusal is not None else serve(edge, statement)
    except Answered as answered:
        # an answer before the bearer statement leaves the tenant unconfirmed: routing confirms it
        # afterwards (tenants.middleware), so a deactivated or deleted tenant's refusal comes first
        return answered.response
    except ProtocolError as error:
        return protocol.json_response(error.body(), error.http_status)


def _transport(request: HttpRequest) -> Incoming:
    """Origin, CORS preflight, method, size, content type and the JSON-RPC message, for a request whose
    Host was checked; every refusal (and a notification's 202) is raised as ``Answered``, a malformed
    message as ``ProtocolError``."""
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
