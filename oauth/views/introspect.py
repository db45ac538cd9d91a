from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.views.introspect import IntrospectTokenView
from oauthlib.common import Request as OAuthlibRequest


@method_decorator(csrf_exempt, name="dispatch")
class ConfidentialIntrospectView(IntrospectTokenView):
    """RFC 7662 introspection for authenticated confidential clients only (POST). DOT would also
    accept any bearer token carrying an ``introspection`` scope, and GET."""

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
        return self.post(request, *args, **kwargs)
