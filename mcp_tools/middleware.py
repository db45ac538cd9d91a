"""The MCP endpoint's place in the middleware stack.

``McpCorsMiddleware`` wraps tenant routing and adds the CORS headers for allowed browser origins to
every answer on an MCP path: the endpoint's own and those routing gives there itself (an unknown
tenant's 404, a deactivated tenant's 403). ``McpEndpointMiddleware`` sits after routing and SecurityMiddleware
(HTTPS redirect and HSTS apply to MCP too) and answers ``/mcp`` itself: a bearer-token API needs
none of the session, cookie, CSRF, message or lockout middleware below it, and this is the hot path.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from mcp_tools.cors import with_cors
from mcp_tools.views import mcp_endpoint
from oauth.issuer import MCP_PATH


class McpCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # after routing, path_info is the path inside the tenant; an unknown tenant's keeps its prefix
        if request.path_info.endswith(MCP_PATH) and "HTTP_ORIGIN" in request.META:
            return with_cors(request, response)
        return response


class McpEndpointMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == MCP_PATH and getattr(request, "tenant", None) is not None:
            return mcp_endpoint(request)
        return self.get_response(request)
