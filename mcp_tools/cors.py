"""CORS for the MCP endpoint, which sits outside the middleware stack (django-cors-headers serves
discovery, token and registration; see ``CORS_URLS_REGEX``).

Browser clients (the Inspector in direct mode, web agents) need a preflight answer and must be able to
read the challenge on a 401/403. Only the origins the endpoint admits (``MCP_ALLOWED_ORIGINS`` or the
endpoint's own origin) get CORS headers; any other origin gets none, and the endpoint's 403.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from mcp_types import jsonrpc

from mcp_tools.protocol import ProtocolError, json_response

# GET and DELETE are listed so a browser client sees the endpoint's own 405 answer (no SSE stream, no
# sessions) instead of a CORS failure.
ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id, mcp-method, mcp-name"
)
EXPOSE_HEADERS = "WWW-Authenticate, Mcp-Protocol-Version, Mcp-Session-Id"
MAX_AGE = "600"


def origin_allowed(request: HttpRequest) -> bool:
    """No Origin (not a browser), the endpoint's own origin, or a configured one."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True
    return origin in settings.MCP_ALLOWED_ORIGINS or origin == f"{request.scheme}://{request.get_host()}"


def with_cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Add the CORS response headers for an allowed browser origin (call only after origin_allowed)."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None and origin_allowed(request):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response["Vary"] = "Origin"
    return response


def gate(request: HttpRequest) -> HttpResponse | None:
    """The answer before anything else is read: a 403 for an Origin not admitted (with no CORS
    headers), the 204 of a CORS preflight; None for a request to serve."""
    if not origin_allowed(request):
        return json_response(ProtocolError(jsonrpc.INVALID_REQUEST, "Origin not allowed").body(), 403)
    if request.method == "OPTIONS" and "HTTP_ORIGIN" in request.META:
        return preflight(request)
    return None


def preflight(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = ALLOW_METHODS
    response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response["Access-Control-Max-Age"] = MAX_AGE
    return with_cors(request, response)
