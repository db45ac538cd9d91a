"""The RFC 7523 JWT bearer grant (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``) for
ID-JAGs (``oauth.id_jag``), as an oauthlib grant type: oauthlib has none for it and django-oauth-toolkit
offers none, so ``oauth.server.TenantServer`` (``OAUTH2_SERVER_CLASS``) registers this one and DOT's
views stay as they are. It follows oauthlib's client-credentials grant: validate, create a bearer token
without a refresh token (the draft: SHOULD NOT), let the validator save it.

Confidential clients only (the draft's "Client Authentication"): a client that authenticates with a
secret (``client_secret_basic`` / ``client_secret_post``) or a client assertion (``private_key_jwt``,
CIMD clients, ``oauth.client_assertion``). A public client gets ``unauthorized_client``; so does a
confidential one not registered for the grant (``ClientProfile.jwt_bearer_grant``) or disabled by the
tenant (``oauth.client_blocks``). The assertion itself is the validator's to judge
(``accept_id_jag``); its refusals are ``invalid_grant`` (or ``invalid_scope`` / ``invalid_target``).
"""

from __future__ import annotations

import json
import logging

from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from oauth.grant_types import JWT_BEARER

log = logging.getLogger(__name__)
CONFIDENTIAL = "confidential"  # DOT's Application.CLIENT_CONFIDENTIAL


class JwtBearerGrant(GrantTypeBase):
    def create_token_response(self, request, token_handler):
        headers = self._get_default_headers()
        try:
            self.validate_token_request(request)
        except errors.OAuth2Error as exc:
            headers.update(exc.headers)
            return headers, exc.json, exc.status_code
        token = token_handler.create_token(request, refresh_token=False)
        for modifier in self._token_modifiers:
            token = modifier(token)
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200

    def validate_token_request(self, request) -> None:
        for validator in self.custom_validators.pre_token:
            validator(request)
        if getattr(request, "grant_type", None) != JWT_BEARER:
            raise errors.UnsupportedGrantTypeError(request=request)
        for param in ("grant_type", "assertion", "scope"):
            if param in request.duplicate_params:
                raise errors.InvalidRequestError(description=f"Duplicate {param} parameter.", request=request)
        self._authenticate_confidential_client(request)
        if not self.request_validator.validate_grant_type(
            request.client_id, request.grant_type, request.client, request
        ):
            raise errors.UnauthorizedClientError(
                description="this client may not present ID-JAGs here (it is not registered for the JWT bearer "
                "grant, or it is disabled)",
                request=request,
            )
        self.request_validator.accept_id_jag(request)
        for validator in self.custom_validators.post_token:
            validator(request)

    def _authenticate_confidential_client(self, request) -> None:
        validator = self.request_validator
        if not validator.client_authentication_required(request):
            # no client credentials, and not a confidential client: a public client, or none at all
            if request.client_id and validator.authenticate_client_id(request.client_id, request):
                raise errors.UnauthorizedClientError(
                    description="public clients cannot use the JWT bearer grant: authenticate as a confidential "
                    "client (client_secret_basic, client_secret_post or private_key_jwt)",
                    request=request,
                )
            raise errors.InvalidClientError(request=request)
        if not validator.authenticate_client(request):
            log.debug("client authentication failed for the JWT bearer grant")
            raise errors.InvalidClientError(request=request)
        if not hasattr(request.client, "client_id"):
            raise NotImplementedError("authenticate_client must set request.client.client_id")
        request.client_id = request.client_id or request.client.client_id
        if request.client_id != request.client.client_id:
            raise errors.InvalidClientError(request=request)
        asserted = getattr(request, "platform_client_asserted", False)
        if request.client.client_type != CONFIDENTIAL and not asserted:
            raise errors.UnauthorizedClientError(
                description="public clients cannot use the JWT bearer grant", request=request
            )
