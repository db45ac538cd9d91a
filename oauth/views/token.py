"""The token endpoint: DOT's view, answering a pair that vanished before the response as the
``invalid_grant`` it is instead of a 500.

DOT's ``authorization_flow_token_response`` looks the issued access token up again after the token
transaction committed (to send ``app_authorized``). A concurrent request can delete it in between:
the refresh token it came with rotated, or the family revoked for reuse. That pair is dead either way.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import TokenView


class PlatformTokenView(TokenView):
    def authorization_flow_token_response(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().authorization_flow_token_response(request, *args, **kwargs)
        except get_access_token_model().DoesNotExist:
            body = {"error": "invalid_grant", "error_description": "the token pair was revoked before it was sent"}
            return HttpResponse(
                json.dumps(body),
                status=400,
                content_type="application/json",
                headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
            )
