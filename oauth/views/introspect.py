from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.views.introspect import IntrospectTokenView
from oauthlib.common import Request as OAuthlibRequest

from oauth.selectors import is_resource_server


@method_decorator(csrf_exempt, name="dispatch")
class ConfidentialIntrospectView(IntrospectTokenView):
    """RFC 7662 introspection (POST) for resource servers only: an authenticated confidential client
    whose profile an admin has marked ``is_resource_server``. Anyone can register a confidential
    client anonymously, so confidentiality alone proves nothing. DOT would also accept any bearer
    token carrying an ``introspection`` scope, and GET."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return JsonResponse({"error": "invalid_request", "error_description": "use POST"}, status=405)
        core = get_oauthlib_core()
        uri, method, body, headers = core._extract_params(request)
        oauth_request = OAuthlibRequest(uri, method, body, headers)
        validator = core.server.request_validator
        if not validator.authenticate_client(oauth_request) or oauth_request.client.client_type != "confidential":
            response = JsonResponse(
                {"error": "invalid_client", "error_description": "introspection needs confidential client credentials"},
                status=401,
            )
            response["WWW-Authenticate"] = 'Basic realm="introspection"'
            return response
        if not is_resource_server(oauth_request.client):
            return JsonResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "only clients an admin has marked as resource servers may introspect",
                },
                status=403,
            )
        return self.post(request, *args, **kwargs)
