"""The token endpoint: DOT's ``TokenView`` behind two fixed-window rate limits (``tenants.ratelimit``),
answering a pair that vanished before the response as the ``invalid_grant`` it is instead of a 500.

- per tenant and client address (``tenants.http.address_bucket``: ``BEHIND_PROXY`` honoured, an IPv6
  client's /64):
  ``OAUTH_TOKEN_RATE_LIMIT`` requests per minute;
- per tenant and ``client_id`` (form field, HTTP Basic user name, or the unverified ``iss`` of a
  ``client_assertion``), from any address:
  ``OAUTH_TOKEN_CLIENT_RATE_LIMIT`` requests per minute, a ceiling on one client's load.

The device grant, which the platform does not offer, is answered ``unsupported_grant_type``
(RFC 6749 §5.2): DOT's view would route it to its device flow and read ``device_code`` unguarded.

Over a limit the answer is an RFC 6749 §5.2-shaped JSON error, ``429`` with ``Retry-After``; the error
code is ``slow_down`` (RFC 8628's name for "poll less often"). Nothing from the request is echoed.

DOT's ``authorization_flow_token_response`` looks the issued access token up again after the token
transaction committed (to send ``app_authorized``). A concurrent request can delete it in between:
the refresh token it came with rotated, or the family revoked for reuse. That pair is dead either way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import TokenView

from oauth import observe
from oauth.client_assertion import unverified_issuer
from tenants.http import address_bucket
from tenants.ratelimit import hit_all

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def requested_client_id(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() == "basic ":
        try:
            user, _, _ = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        if user:
            return unquote_plus(user)
    return request.POST.get("client_id") or unverified_issuer(request.POST.get("client_assertion"))


def _slow_down(retry_after: int) -> JsonResponse:
    response = JsonResponse(
        {"error": "slow_down", "error_description": "too many token requests; retry after the Retry-After delay"},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


def token_rate_refusal(request: HttpRequest) -> HttpResponse | None:
    schema = request.tenant.schema_name
    limits = [(f"token:addr:{schema}:{address_bucket(request)}", *settings.OAUTH_TOKEN_RATE_LIMIT)]
    client_id = requested_client_id(request)
    if client_id:
        digest = hashlib.sha256(client_id.encode()).hexdigest()[:32]  # any length or characters -> a short key
        limits.append((f"token:client:{schema}:{digest}", *settings.OAUTH_TOKEN_CLIENT_RATE_LIMIT))
    allowed, retry_after = hit_all(limits)  # one Redis round trip for both
    return None if allowed else _slow_down(retry_after)


class PlatformTokenView(TokenView):
    # bearer credentials of the grants DOT's own decorator does not name: kept out of error reports
    @method_decorator(sensitive_post_parameters("assertion", "client_assertion", "code", "refresh_token"))
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = self._answer(request, *args, **kwargs)
        observe.token_answer(request, response, requested_client_id(request))  # metrics + audit trail
        return response

    def _answer(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if refusal := token_rate_refusal(request):
            return refusal
        if request.POST.get("grant_type") == DEVICE_CODE_GRANT:
            response = JsonResponse(
                {"error": "unsupported_grant_type", "error_description": "the device grant is not offered"},
                status=400,
            )
            response["Cache-Control"] = "no-store"
            return response
        return super().post(request, *args, **kwargs)

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
