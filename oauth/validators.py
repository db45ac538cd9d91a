"""django-oauth-toolkit's validator, extended where the platform is stricter than DOT's defaults.

- RFC 8707: ``resource`` defaults to the tenant's MCP resource; it may instead name the tenant's REST
  API (``H/t/<slug>/api``), and a token has exactly one of them as its audience, so a token for one is
  refused at the other.
- RFC 9700 §4.5: a replayed authorization code revokes the token family it produced, but only when
  the replay is otherwise valid (the code's client and a PKCE verifier matching its challenge), so a
  spent code and a public client id are not enough to end someone's session; it is refused either
  way. Two concurrent exchanges of one code cannot both mint tokens.
- Refresh-token rotation with reuse detection (DOT), made idempotent for parallel and retried
  refreshes. Refreshes of one refresh token queue on its row (``SELECT ... FOR UPDATE``, the row DOT's
  rotation locks first; access-token rows only after it, everywhere). The first rotates it; the pair
  it got is kept, encrypted with the platform's Fernet keys, for the grace window. Every duplicate
  inside the window (a parallel request, or a retry after a lost response) gets that same pair, so
  the family survives and no one is handed an empty or dead token. After the window, or once the
  successor itself has been used, presenting the old token is reuse and revokes the family.
  DOT's own grace branch (which returns stored cleartext, empty under hashed storage: its check
  E001) is never reached.
- After the resource server answered ``insufficient_scope``, a refresh of that family that does not
  ask for the challenged scope is refused for a short window (oauth.stepup; TS SDK 1.x step-up).
- Refresh tokens also have an absolute lifetime, counted from the start of their family.
- Client secrets are checked with the client-secret hasher as the preferred one (``oauth.hashers``:
  one HMAC-SHA256, not a million PBKDF2 rounds); one stored under another hasher is rehashed at its
  next successful use.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, identify_hasher
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone
from fernet_fields import DecryptionError
from oauth2_provider.models import Grant, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from oauth import observe
from oauth.backends import allowed_resources
from oauth.models import ClientProfile, RedeemedCode, RefreshSuccessor
from oauth.services import rehash_client_secret
from oauth.stepup import pending_step_up

logger = logging.getLogger(__name__)


def checksum(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class _Reuse(Exception):
    """A rotated refresh token presented outside the idempotent window: revoke its family once the
    token transaction has rolled back."""

    def __init__(self, token_family) -> None:
        super().__init__("refresh token reuse")
        self.token_family = token_family


class TenantOAuth2Validator(OAuth2Validator):
    # --- client secrets ---------------------------------------------------------------------------
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        try:
            identify_hasher(stored_secret)
        except ValueError:  # stored unhashed (hash_client_secret=False): DOT's constant-time compare
            return super()._check_secret(provided_secret, stored_secret)
        return check_password(
            provided_secret,
            stored_secret,
            setter=lambda secret: rehash_client_secret(stored=stored_secret, secret=secret),
            preferred=oauth2_settings.CLIENT_SECRET_HASHER,
        )

    # --- RFC 8707 ------------------------------------------------------------------------------
    def _check_and_set_request_resource(self, request) -> None:
        super()._check_and_set_request_resource(request)
        allowed = list(allowed_resources.get())
        if not request.resource:
            request.resource = list(allowed[:1])
        stray = [r for r in request.resource if r not in allowed]
        if stray or len(request.resource) != 1:
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description="resource must be one of this tenant's resources: its MCP endpoint or its API",
                request=request,
            )

    # --- authorization code replay ------------------------------------------------------------
    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if super().validate_code(client_id, code, client, request, *args, **kwargs):
            return True
        replayed = RedeemedCode.objects.filter(code_checksum=checksum(code), application=client).first()
        if replayed is not None and replayed.token_family and _verifier_matches(replayed, request.code_verifier):
            RefreshToken.revoke_family(replayed.token_family)
            logger.warning("authorization code replayed: token family revoked", extra={"client": client_id})
            user_id = _family_user(replayed.token_family)
            observe.family_revoked("authorization_code", client_id=client_id, user_id=user_id)
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
        valid = self._validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not valid:  # observability: DOT's reuse protection revoked the family, or a plain refusal
            family = _revoked_family(refresh_token)
            if family is not None:
                observe.family_revoked("refresh_token", client_id=client.client_id, user_id=_family_user(family))
            else:
                observe.refresh("refused")
        return valid

    def _validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        rt = request.refresh_token_instance
        started = RefreshToken.objects.filter(token_family=rt.token_family).aggregate(m=Min("created"))["m"]
        absolute = timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS)
        if started and started + absolute <= timezone.now():
            return False
        challenged = pending_step_up(rt.token_family, (request.scope or "").split())
        if challenged is not None:
            observe.refresh("step_up_refused")
            raise errors.InvalidGrantError(
                description=f'the resource server asked for scope "{challenged}": authorize again with it',
                request=request,
            )
        return True

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        rt = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        request.issued_refresh_token = rt
        return rt

    def save_bearer_token(self, token, request, *args, **kwargs):
        try:
            return super().save_bearer_token(token, request, *args, **kwargs)
        except _Reuse as reuse:
            # outside the rolled-back token transaction, so the revocation sticks
            RefreshToken.revoke_family(reuse.token_family)
            RefreshSuccessor.objects.filter(token_family=reuse.token_family).delete()
            logger.warning("refresh token reused: token family revoked", extra={"client": request.client_id})
            observe.family_revoked(
                "refresh_token", client_id=request.client_id, user_id=_family_user(reuse.token_family)
            )
            raise errors.InvalidGrantError(description="refresh token reused", request=request) from None

    def _save_bearer_token(self, token, request, *args, **kwargs):
        if request.grant_type == "authorization_code":
            self._save_code_exchange(token, request, *args, **kwargs)
        elif request.grant_type == "refresh_token":
            self._save_refresh(token, request, *args, **kwargs)
        else:
            super()._save_bearer_token(token, request, *args, **kwargs)
        ClientProfile.objects.filter(application=request.client).update(last_used_at=timezone.now())

    def _save_code_exchange(self, token, request, *args, **kwargs) -> None:
        # Lock the grant: of two concurrent exchanges of one code, the second waits here and then
        # finds the code redeemed, instead of minting a second token pair.
        if not Grant.objects.select_for_update().filter(code=request.code, application=request.client).exists():
            raise errors.InvalidGrantError(request=request)
        grant = self._grant(request.code, request.client, request)
        super()._save_bearer_token(token, request, *args, **kwargs)
        issued = getattr(request, "issued_refresh_token", None)
        try:
            with transaction.atomic():
                RedeemedCode.objects.create(
                    code_checksum=checksum(request.code),
                    application=request.client,
                    token_family=issued.token_family if issued else None,
                    code_challenge=grant.code_challenge,
                    code_challenge_method=grant.code_challenge_method,
                )
        except IntegrityError as exc:
            raise errors.InvalidGrantError(request=request) from exc

    def _save_refresh(self, token, request, *args, **kwargs) -> None:
        """Rotate the presented refresh token, or answer a duplicate with the pair it was rotated to.

        Runs inside DOT's token transaction. The presented token's row is locked first, as DOT's
        rotation does (then its access token), so concurrent refreshes of one token run one after
        the other and each sees what the previous one committed."""
        try:
            rt = RefreshToken.objects.select_for_update().get(pk=request.refresh_token_instance.pk)
        except RefreshToken.DoesNotExist:  # deleted meanwhile (revocation, cleanup)
            raise errors.InvalidGrantError(request=request) from None
        if rt.revoked is None:
            request.refresh_token_instance = rt
            request.issued_refresh_token = None
            super()._save_bearer_token(token, request, *args, **kwargs)
            successor = request.issued_refresh_token
            if successor is None or not token.get("access_token") or not token.get("refresh_token"):
                raise errors.InvalidGrantError(request=request)  # never hand out an empty or stored pair
            _drop_stale_successors(rt.token_family)
            RefreshSuccessor.objects.create(
                refresh_token=rt,
                successor=successor,
                token_family=rt.token_family,
                pair={"access_token": token["access_token"], "refresh_token": token["refresh_token"]},
            )
            observe.refresh("rotated")
            return
        self._answer_duplicate(token, request, rt)

    def _answer_duplicate(self, token, request, rt: RefreshToken) -> None:
        request.refresh_token_instance = rt
        self._check_and_set_request_resource(request)  # a duplicate is refused what the first would be
        now = timezone.now()
        window = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
        try:
            kept = (
                RefreshSuccessor.objects.select_related("successor__access_token").filter(refresh_token=rt).first()
                if rt.revoked + window > now
                else None
            )
        except DecryptionError:  # encrypted under a key no longer in FERNET_KEYS: cannot answer, not reuse
            raise errors.InvalidGrantError(request=request) from None
        access = kept.successor.access_token if kept is not None and kept.successor.revoked is None else None
        if access is None or access.expires <= now:
            raise _Reuse(rt.token_family)
        token["access_token"] = kept.pair["access_token"]
        token["refresh_token"] = kept.pair["refresh_token"]
        token["scope"] = access.scope
        token["expires_in"] = int((access.expires - now).total_seconds())
        observe.refresh("duplicate")

    # --- revocation endpoint (RFC 7009): DOT revokes, observability counts ------------------------
    def revoke_token(self, token, token_type_hint, request, *args, **kwargs) -> None:
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        client = getattr(request, "client", None)
        observe.revoked(client_id=getattr(client, "client_id", None), user_id=None)


def _revoked_family(refresh_token: str):
    """The family of a revoked refresh token presented again (DOT revokes it as reuse), else None."""
    return (
        RefreshToken.objects.filter(token_checksum=checksum(refresh_token), revoked__isnull=False)
        .exclude(token_family=None)
        .values_list("token_family", flat=True)
        .first()
    )


def _family_user(token_family) -> int | None:
    """The user of a token family (for the audit trail of a replay)."""
    return RefreshToken.objects.filter(token_family=token_family).values_list("user_id", flat=True).first()


def _drop_stale_successors(token_family) -> None:
    """Older answers of this family are stale (their successor has just been used), and any answer
    past the grace window is dropped too. ``SKIP LOCKED``: never wait on, or deadlock with, another
    family's refresh; whatever is skipped goes on a later refresh or the daily sweep."""
    table = RefreshSuccessor._meta.db_table
    cutoff = timezone.now() - timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608 (model metadata)
            "WHERE token_family = %s OR created_at <= %s FOR UPDATE SKIP LOCKED)",
            [token_family, cutoff],
        )


def _verifier_matches(redeemed: RedeemedCode, verifier: str | None) -> bool:
    """PKCE (RFC 7636 §4.6) against the challenge of a code that was already exchanged."""
    if not verifier or not redeemed.code_challenge:
        return False
    if redeemed.code_challenge_method == "S256":
        return code_challenge_method_s256(verifier, redeemed.code_challenge)
    return False  # "plain" is refused at the authorization endpoint (RFC 9700)
