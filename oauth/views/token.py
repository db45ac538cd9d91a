"""The token endpoint: DOT's TokenView without the device grant the platform does not offer.

DOT's view routes ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` to its device flow
before oauthlib sees the request, and reads ``device_code`` unguarded (a missing one is a 500). The
platform has no device authorization endpoint, so that grant is answered like any other grant it
does not support (RFC 6749 §5.2)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.views import TokenView

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class TenantTokenView(TokenView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.POST.get("grant_type") == DEVICE_CODE_GRANT:
            response = JsonResponse(
                {"error": "unsupported_grant_type", "error_description": "the device grant is not offered"},
                status=400,
            )
            response["Cache-Control"] = "no-store"
            return response
        return super().post(request, *args, **kwargs)
