"""The oauthlib server behind django-oauth-toolkit's views (``OAUTH2_SERVER_CLASS``): oauthlib's
pre-configured one, with the RFC 7523 JWT bearer grant for ID-JAGs registered at the token endpoint
(``oauth.jwt_bearer``, ``oauth.id_jag``). Everything else is oauthlib's and DOT's, unchanged."""

from __future__ import annotations

from oauthlib.oauth2 import Server

from oauth.grant_types import JWT_BEARER
from oauth.jwt_bearer import JwtBearerGrant


class TenantServer(Server):
    def __init__(self, request_validator, *args, **kwargs) -> None:
        super().__init__(request_validator, *args, **kwargs)
        self.jwt_bearer_grant = JwtBearerGrant(request_validator)
        self._grant_types[JWT_BEARER] = self.jwt_bearer_grant  # TokenEndpoint's grant-type table
