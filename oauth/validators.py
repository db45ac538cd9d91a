"""django-oauth-toolkit's validator, extended where the platform is stricter than DOT's defaults.

- RFC 8707: ``resource`` defaults to the tenant's MCP resource and may name nothing else.
- RFC 9700 §4.5: a replayed authorization code revokes the token family it produced; two concurrent
  exchanges of one code cannot both mint tokens.
- Refresh-token rotation with reuse detection (DOT) plus a lost-response grace that works with hashed
  storage: a retry inside the grace window mints a *fresh* pair in the same family and revokes the
  unused successor (as Ory Hydra does), once only; DOT's own grace would hand back the stored
  cleartext pair, which hashed storage no longer has (its check E001).
- Refresh tokens also have an absolute lifetime, counted from the start of their family.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from oauth.backends import allowed_resources
from oauth.models import ClientProfile, GraceRedemption, RedeemedCode

logger = logging.getLogger(__name__)


def checksum(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class TenantOAuth2Validator(OAuth2Validator):
    # --- RFC 8707 ------------------------------------------------------------------------------
    def _check_and_set_request_resource(self, request) -> None:
        super()._check_and_set_request_resource(request)
        allowed = list(allowed_resources.get())
        if not request.resource:
            request.resource = list(allowed[:1])
        stray = [r for r in request.resource if r not in allowed]
        if stray or not request.resource:
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description="resource must be this tenant's MCP endpoint",
                request=request,
            )

    # --- authorization code replay ------------------------------------------------------------
    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        replayed = RedeemedCode.objects.filter(code_checksum=checksum(code), application=client).first()
        if replayed is not None and replayed.token_family:
            RefreshToken.revoke_family(replayed.token_family)
            logger.warning("authorization code replayed: token family revoked", extra={"client": client_id})
        return False

    # --- the grant, read once per token request --------------------------------------------------
    # DOT reads the grant row separately for the redirect check, the PKCE challenge and its method.
    def _grant(self, code: str, client, request) -> Grant:
        cached = getattr(request, "platform_grant", None)
        if cached is None or cached.code != code:
            cached = Grant.objects.get(code=code, application=client)
            request.platform_grant = cached
        return cached

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        return self._grant(code, client, request).redirect_uri_allowed(redirect_uri)

    def get_code_challenge(self, code, request):
        return self._grant(code, request.client, request).code_challenge or None

    def get_code_challenge_method(self, code, request):
        return self._grant(code, request.client, request).code_challenge_method or None

    # --- refresh tokens -----------------------------------------------------------------------
    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        rt = request.refresh_token_instance
        if rt.revoked is not None and GraceRedemption.objects.filter(refresh_token=rt).exists():
            # a second retry of the same rotated token: that is reuse, not a lost response
            RefreshToken.revoke_family(rt.token_family)
            return False
        started = RefreshToken.objects.filter(token_family=rt.token_family).aggregate(m=Min("created"))["m"]
        absolute = timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS)
        return not (started and started + absolute <= timezone.now())

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        rt = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        request.issued_refresh_token = rt
        return rt

    def _save_bearer_token(self, token, request, *args, **kwargs):
        if request.grant_type == "authorization_code":
            self._save_code_exchange(token, request, *args, **kwargs)
        elif request.grant_type == "refresh_token" and request.refresh_token_instance.revoked is not None:
            self._save_grace_retry(token, request)
        else:
            super()._save_bearer_token(token, request, *args, **kwargs)
        ClientProfile.objects.filter(application=request.client).update(last_used_at=timezone.now())

    def _save_code_exchange(self, token, request, *args, **kwargs) -> None:
        # Lock the grant: of two concurrent exchanges of one code, the second waits here and then
        # finds the code redeemed, instead of minting a second token pair.
        if not Grant.objects.select_for_update().filter(code=request.code, application=request.client).exists():
            raise errors.InvalidGrantError(request=request)
        super()._save_bearer_token(token, request, *args, **kwargs)
        issued = getattr(request, "issued_refresh_token", None)
        try:
            with transaction.atomic():
                RedeemedCode.objects.create(
                    code_checksum=checksum(request.code),
                    application=request.client,
                    token_family=issued.token_family if issued else None,
                )
        except IntegrityError as exc:
            raise errors.InvalidGrantError(request=request) from exc

    def _save_grace_retry(self, token, request) -> None:
        """The client presents the refresh token it just rotated, inside the grace window, while the
        successor it was given is still unused: its response was lost. Issue a fresh pair in the same
        family, revoke the unused successor, and never honour this refresh token again."""
        old = RefreshToken.objects.select_for_update().get(pk=request.refresh_token_instance.pk)
        try:
            with transaction.atomic():
                GraceRedemption.objects.create(refresh_token=old)
        except IntegrityError:  # a concurrent retry won the race; validate_refresh_token catches later ones
            raise errors.InvalidGrantError(description="refresh token reused", request=request) from None
        unused_access = AccessToken.objects.select_for_update().filter(source_refresh_token=old).first()
        if unused_access is not None:
            successor = RefreshToken.objects.filter(access_token=unused_access).first()
            if successor is not None:
                successor.revoke()  # also deletes unused_access
            else:
                unused_access.delete()
        self._check_and_set_request_resource(request)
        expires = timezone.now() + timedelta(seconds=token["expires_in"])
        access = self._create_access_token(expires, request, token, source_refresh_token=old)
        self._create_refresh_token(request, token["refresh_token"], access, old)
