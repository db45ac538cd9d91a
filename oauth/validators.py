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
- CIMD clients whose document declares ``private_key_jwt`` (kept in their profile; DOT itself keeps
  every CIMD client public) authenticate with a client assertion at the token and revocation
  endpoints (``oauth.client_assertion``), on every request: ``client_authentication_required``,
  ``authenticate_client`` and ``authenticate_client_id`` refuse them without one. A token family
  issued after an assertion needs one on every refresh, whatever the document says later
  (``AssertedTokenFamily``). Every refusal is ``invalid_client`` with a description, and audited.
- Enterprise-managed authorization: the JWT bearer grant (``oauth.jwt_bearer``, registered by
  ``oauth.server``) for clients registered for it (``validate_grant_type``); the ID-JAG is judged by
  ``oauth.id_jag`` (``accept_id_jag``) and the access token records the identity provider that vouched
  for it (``_save_id_jag_token``).

This module decides; the token endpoint's first read is ``oauth.token_reads`` and its single-statement
writes (code exchange, refresh rotation) are ``oauth.token_writes``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, identify_hasher
from django.db.models import Min
from django.utils import timezone
from fernet_fields import DecryptionError
from oauth2_provider import cimd
from oauth2_provider.models import AccessToken, Grant, RefreshToken, refresh_token_expire_timedelta
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from oauth import client_blocks, id_jag, observe, token_writes
from oauth.backends import allowed_resources, current_request
from oauth.client_assertion import ASSERTION_TYPE, MAX_ASSERTION_BYTES, AssertionRefused, unverified_issuer, verify
from oauth.grant_types import JWT_BEARER
from oauth.issuer import issuer
from oauth.models import AssertedTokenFamily, ClientProfile, RedeemedCode, RefreshSuccessor
from oauth.services import mark_asserted_family, record_id_jag_token, rehash_client_secret
from oauth.stepup import challenge_window_start, pending_step_up, uncovered
from oauth.token_reads import grant_with_client, live_refresh_token_with_client, live_refresh_tokens

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

    # --- private_key_jwt (CIMD clients) ---------------------------------------------------------
    def client_authentication_required(self, request, *args, **kwargs) -> bool:
        if _assertion_presented(request):
            return True
        if super().client_authentication_required(request, *args, **kwargs):
            return True
        return request.client is not None and _needs_assertion(request.client, request)

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        if _assertion_presented(request):
            return self._authenticate_assertion(request)
        if request.client is not None and _needs_assertion(request.client, request):
            _refuse(request, "missing_assertion", _ASSERTION_NEEDED, request.client.client_id)
        return super().authenticate_client(request, *args, **kwargs)

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        if not super().authenticate_client_id(client_id, request, *args, **kwargs):
            return False
        if _needs_assertion(request.client, request):
            _refuse(request, "missing_assertion", _ASSERTION_NEEDED, request.client.client_id)
        return True

    def _authenticate_assertion(self, request) -> bool:
        assertion_type = getattr(request, "client_assertion_type", None)
        assertion = getattr(request, "client_assertion", None)
        claimed = unverified_issuer(assertion)
        if not settings.OAUTH_CIMD_PRIVATE_KEY_JWT:
            _refuse(request, "turned_off", "private_key_jwt is not offered by this server", None)
        if assertion_type != ASSERTION_TYPE:
            _refuse(request, "unsupported_type", f"client_assertion_type must be {ASSERTION_TYPE}", None)
        if not isinstance(assertion, str) or not assertion or {"client_assertion", "client_assertion_type"} & set(
            request.duplicate_params
        ):
            _refuse(request, "malformed", "send one client_assertion", None)
        if len(assertion) > MAX_ASSERTION_BYTES:
            _refuse(request, "too_large", f"client_assertion is larger than {MAX_ASSERTION_BYTES} bytes", None)
        if self._extract_basic_auth(request) or getattr(request, "client_secret", None):
            _refuse(request, "mixed_methods", "use one client authentication method: an assertion or a secret", None)
        if claimed is None:
            _refuse(request, "malformed", "client_assertion has no readable iss claim", None)
        if request.client_id and request.client_id != claimed:
            _refuse(request, "client_id_mismatch", "client_id differs from the client_assertion's iss", None)
        client = self._load_application(claimed, request)
        if client is None:
            _refuse(request, "unknown_client", "the client_assertion's iss is not a known client", None)
        profile = _profile(client, request)
        if profile is None or not profile.uses_private_key_jwt:
            _refuse(request, "not_private_key_jwt", "this client does not authenticate with private_key_jwt", claimed)
        try:
            verify(assertion, client_id=claimed, profile=profile, audiences=_audiences())
        except AssertionRefused as refused:
            _refuse(request, refused.reason, refused.description, claimed)
        request.client = client
        request.client_id = claimed
        request.platform_client_asserted = True
        return True

    # --- the client, read with what the token request presents -----------------------------------
    def _load_application(self, client_id, request):
        """DOT's, except that a token request's first statement also reads what it presents: the
        authorization code's grant (with its user), or the live refresh token (``token_reads.live_refresh_tokens``),
        joined to the client by ``client_id``. One statement instead of two; the validation below
        uses the row read here (``_grant``, ``_validate_refresh_token``). Nothing found that way (an
        unknown or spent code, a revoked or unknown refresh token, another client's): DOT's own read."""
        if not request.client and client_id and isinstance(client_id, str):
            client = _client_with_presented(client_id, request)
            if client is not None:
                client = cimd.refresh_if_stale(client, request=request)
                if client.is_usable(request):
                    request.client = client
                    return client
        return super()._load_application(client_id, request)

    # --- the tenant's kill switch (oauth.client_blocks) --------------------------------------
    def validate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        """The authorization endpoint: a disabled client cannot authorize."""
        valid = super().validate_client_id(client_id, request, *args, **kwargs)
        return valid and not client_blocks.is_blocked(request.client)

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs) -> bool:
        """The token endpoint: a code or refresh token of a disabled client was revoked with the
        block (no statement added to those hot paths); any other grant is refused here. The JWT bearer
        grant (ID-JAGs), which DOT does not know, needs the client's registration for it."""
        if grant_type == JWT_BEARER:
            profile = _profile(client, request)
            return profile is not None and profile.jwt_bearer_grant and not client_blocks.is_blocked(client)
        valid = super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)
        if not valid or grant_type in ("authorization_code", "refresh_token"):
            return valid
        return not client_blocks.is_blocked(client)

    # --- ID-JAGs (the JWT bearer grant, oauth.jwt_bearer) ----------------------------------------
    def accept_id_jag(self, request) -> None:
        """Judge the presented ID-JAG (``oauth.id_jag``) for the authenticated client; on success the
        member, the granted scopes and the resource go on the request, on refusal the OAuth error
        (``invalid_grant``, ``invalid_scope`` or ``invalid_target``) with its description, audited."""
        http_request = current_request.get()
        resource = getattr(request, "resource", None)
        requested = [v for k, v in (getattr(request, "decoded_body", None) or []) if k == "resource"]
        if not requested and isinstance(resource, str) and resource:
            requested = [resource]
        try:
            accepted = id_jag.accept(
                getattr(request, "assertion", None),
                client_id=request.client.client_id,
                issuer=issuer(http_request) if http_request is not None else "",
                resources=tuple(allowed_resources.get()),
                requested_scopes=list(request.scopes or []),
                requested_resources=requested,
            )
        except id_jag.Refused as refused:
            observe.id_jag(
                refused.reason, client_id=request.client.client_id, user_id=refused.user_id, request=http_request
            )
            raise _oauth_error(refused, request) from None
        observe.id_jag(
            f"accepted_{accepted.found_by}",
            client_id=request.client.client_id,
            user_id=accepted.user.pk,
            request=http_request,
        )
        request.user = accepted.user
        request.scopes = list(accepted.scopes)
        request.resource = [accepted.resource]
        request.platform_id_jag = accepted

    # --- RFC 8707 ------------------------------------------------------------------------------
    def _check_and_set_request_resource(self, request) -> None:
        grant = getattr(request, "platform_grant", None)
        if request.grant_type == "authorization_code" and grant is not None and grant.code == request.code:
            _inherit_grant_resource(self, request, grant)  # DOT's, without reading the grant again
        else:
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
        if self._validate_grant(code, client, request):
            return True
        replayed = RedeemedCode.objects.filter(code_checksum=checksum(code), application=client).first()
        if replayed is not None and replayed.token_family and _verifier_matches(replayed, request.code_verifier):
            RefreshToken.revoke_family(replayed.token_family)
            logger.warning("authorization code replayed: token family revoked", extra={"client": client_id})
            user_id = _family_user(replayed.token_family)
            observe.family_revoked("authorization_code", client_id=client_id, user_id=user_id)
        return False

    # --- the grant, read once per token request --------------------------------------------------
    # DOT reads the grant row for the code, the redirect check, the PKCE challenge, its method and the
    # resource, then its user, and once more to delete it after the token transaction: one read here,
    # with the user, and the deletion is the lock inside the token transaction (_save_code_exchange).
    def _grant(self, code: str, client, request) -> Grant:
        cached = getattr(request, "platform_grant", None)
        if cached is None or cached.code != code:
            cached = Grant.objects.select_related("user").get(code=code, application=client)
            request.platform_grant = cached
        return cached

    def _validate_grant(self, code: str, client, request) -> bool:
        """DOT's ``validate_code`` on the one read of the grant."""
        try:
            grant = self._grant(code, client, request)
        except Grant.DoesNotExist:
            return False
        if grant.is_expired():
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            request.claims = json.loads(grant.claims)
        return True

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        return self._grant(code, client, request).redirect_uri_allowed(redirect_uri)

    def get_code_challenge(self, code, request):
        return self._grant(code, request.client, request).code_challenge or None

    def get_code_challenge_method(self, code, request):
        return self._grant(code, request.client, request).code_challenge_method or None

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        if getattr(request, "platform_grant_redeemed", False):
            return  # deleted inside the token transaction (_save_code_exchange)
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

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
        rt = getattr(request, "platform_live_refresh_token", None)
        if rt is None or rt.application_id != client.pk:
            rt = live_refresh_tokens(checksum(refresh_token), challenge_window_start()).first()
        if rt is None:  # unknown, or revoked (a duplicate within the grace window, or reuse): DOT decides
            if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
                return False
            rt = request.refresh_token_instance
            started = RefreshToken.objects.filter(token_family=rt.token_family).aggregate(m=Min("created"))["m"]
            challenged = pending_step_up(rt.token_family, (request.scope or "").split())
        else:
            if not _accept_live_refresh_token(rt, refresh_token, client, request):
                return False
            started = rt.family_started
            challenged = uncovered(rt.challenged_scope, (request.scope or "").split())
        absolute = timedelta(seconds=settings.OAUTH_REFRESH_TOKEN_ABSOLUTE_SECONDS)
        if started and started + absolute <= timezone.now():
            return False
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
        saved = self._save_bearer_token_once(token, request, *args, **kwargs)
        issued = getattr(request, "issued_refresh_token", None)
        if getattr(request, "platform_client_asserted", False) and issued is not None and issued.token_family:
            mark_asserted_family(application=request.client, token_family=issued.token_family)
        return saved

    def _save_bearer_token_once(self, token, request, *args, **kwargs):
        if _one_statement_exchange(request, token):
            # one autocommitted statement is its own transaction: no BEGIN/COMMIT round trips
            return self._save_code_exchange(token, request, *args, **kwargs)
        if _one_statement_refresh(request, token) and self._rotate_in_one_statement(token, request):
            return None
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
        elif request.grant_type == JWT_BEARER:
            self._save_id_jag_token(token, request)
        else:
            super()._save_bearer_token(token, request, *args, **kwargs)
            _touch_profile(request.client)

    def _save_code_exchange(self, token, request, *args, **kwargs) -> None:
        """DOT's ``_save_bearer_token`` for a code exchange (scope present, RFC 8707 resource, the
        access token and a new family's refresh token, built by DOT's models and ``_set_token_value``),
        written in one statement with the grant's deletion, the ``RedeemedCode`` row and the client's
        ``last_used_at`` (``oauth.token_writes.exchange_in_one_statement``). The grant is deleted first: of two
        concurrent exchanges of one code, the second waits on the row lock and then deletes nothing
        (invalid_grant) instead of minting a second pair; a statement either does all of it or none."""
        grant = self._grant(request.code, request.client, request)
        if "scope" not in token:
            raise errors.FatalClientError("Failed to renew access token: missing scope")  # as DOT
        self._check_and_set_request_resource(request)
        expires = timezone.now() + timedelta(
            seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        )
        access = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            application=request.client,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(access, token["access_token"])
        refresh = RefreshToken(
            user=request.user,
            application=request.client,
            token_family=uuid.uuid4(),
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(refresh, token["refresh_token"])
        if not token_writes.exchange_in_one_statement(
            grant, access, refresh, code_checksum=checksum(request.code), application=request.client
        ):
            raise errors.InvalidGrantError(request=request)
        request.platform_grant_redeemed = True
        request.issued_refresh_token = refresh

    def _save_id_jag_token(self, token, request) -> None:
        """An access token for an accepted ID-JAG (no refresh token), and the identity provider that
        vouched for it (``IdJagToken``), in DOT's token transaction."""
        self._check_and_set_request_resource(request)
        expires_in = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        access = self._create_access_token(timezone.now() + timedelta(seconds=expires_in), request, token)
        record_id_jag_token(access_token=access, provider=request.platform_id_jag.provider)
        _touch_profile(request.client)

    def _save_refresh(self, token, request, *args, **kwargs) -> None:
        """Rotate the presented refresh token, or answer a duplicate with the pair it was rotated to.

        Runs inside DOT's token transaction. The presented token's row is locked first, as DOT's
        rotation does (then its access token), so concurrent refreshes of one token run one after
        the other and each sees what the previous one committed."""
        try:
            rt = RefreshToken.objects.select_for_update().get(pk=request.refresh_token_instance.pk)
        except RefreshToken.DoesNotExist:  # deleted meanwhile (revocation, cleanup)
            raise errors.InvalidGrantError(request=request) from None
        if rt.revoked is not None:
            self._answer_duplicate(token, request, rt)
            _touch_profile(request.client)
            return
        if not token.get("access_token") or not token.get("refresh_token") or "scope" not in token:
            raise errors.InvalidGrantError(request=request)  # never hand out an empty or stored pair
        self._rotate(token, request, rt)
        observe.refresh("rotated")

    def _rotate(self, token, request, rt: RefreshToken) -> None:
        """DOT's rotation (``_save_bearer_token`` with ``ROTATE_REFRESH_TOKEN``) on the row locked above:
        its access token deleted and the token revoked in one statement (DOT: a savepoint, the token
        locked and read again, the access token read, a collector's UPDATE and DELETE, a full UPDATE),
        the new pair created by DOT's own methods, then the successor kept (``token_writes.keep_successor``). The
        platform always rotates (``ROTATE_REFRESH_TOKEN``, asserted by tests/test_oauth_settings.py)."""
        request.refresh_token_instance = rt
        self._check_and_set_request_resource(request)
        expires_in = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        expires = timezone.now() + timedelta(seconds=expires_in)
        token_writes.retire(rt)
        access = self._create_access_token(expires, request, token, source_refresh_token=rt)
        successor = self._create_refresh_token(request, token["refresh_token"], access, rt)
        request.refresh_token_instance = None  # as DOT leaves it after a rotation
        token_writes.keep_successor(rt, successor, token, request.client)

    def _rotate_in_one_statement(self, token, request) -> bool:
        """``_rotate`` for a refresh token that was live when validated, as one autocommitted statement
        (``token_writes.rotation_in_one_statement``): no BEGIN, row lock read or COMMIT round trips. False, with
        nothing written, when a concurrent request rotated or revoked it first (its UPDATE waited on
        that one's row lock, then matched no live row): the transactional path below then answers
        it as the duplicate it is (or as reuse)."""
        rt = request.refresh_token_instance
        self._check_and_set_request_resource(request)
        expires_in = token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        access = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=timezone.now() + timedelta(seconds=expires_in),
            application=request.client,
            source_refresh_token=rt,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(access, token["access_token"])
        successor = RefreshToken(
            user=request.user,
            application=request.client,
            token_family=rt.token_family,
            resource=getattr(request, "resource", []),
        )
        self._set_token_value(successor, token["refresh_token"])
        if not token_writes.rotation_in_one_statement(rt, access, successor, token, request.client):
            return False
        request.issued_refresh_token = successor
        request.refresh_token_instance = None  # as DOT leaves it after a rotation
        observe.refresh("rotated")
        return True

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


_ASSERTION_NEEDED = (
    "this client authenticates with private_key_jwt: send client_assertion_type "
    f"{ASSERTION_TYPE} and a client_assertion"
)


def _assertion_presented(request) -> bool:
    return getattr(request, "client_assertion", None) is not None or (
        getattr(request, "client_assertion_type", None) is not None
    )


def _oauth_error(refused: id_jag.Refused, request) -> errors.OAuth2Error:
    if refused.error == "invalid_scope":
        return errors.InvalidScopeError(description=refused.description, request=request)
    if refused.error == "invalid_request":
        return errors.InvalidRequestError(description=refused.description, request=request)
    if refused.error == "invalid_target":
        return errors.CustomOAuth2Error(error="invalid_target", description=refused.description, request=request)
    return errors.InvalidGrantError(description=refused.description, request=request)


def _refuse(request, reason: str, description: str, client_id: str | None):
    """``invalid_client`` with ``description`` (oauthlib turns it into the 401 answer), audited."""
    observe.client_assertion_refused(reason, client_id=client_id, request=current_request.get())
    raise errors.InvalidClientError(description=description, request=request)


def _profile(client, request) -> ClientProfile | None:
    cached = getattr(request, "platform_profile", None)
    if cached is None or cached.application_id != client.pk:
        cached = ClientProfile.objects.filter(application=client).select_related("application").first()
        request.platform_profile = cached
    return cached


def _needs_assertion(client, request) -> bool:
    """A CIMD client that must authenticate with a client assertion on this request: its document
    declares private_key_jwt, or the refresh token presented belongs to a family issued after one.
    Decided once per request (oauthlib may ask twice)."""
    if not settings.OAUTH_CIMD_PRIVATE_KEY_JWT or client.registration_source != client.RegistrationSource.CIMD:
        return False
    decided = getattr(request, "platform_needs_assertion", None)
    if decided is None or decided[0] != client.pk:
        decided = request.platform_needs_assertion = (client.pk, _cimd_client_needs_assertion(client, request))
    return decided[1]


def _cimd_client_needs_assertion(client, request) -> bool:
    profile = _profile(client, request)
    if profile is not None and profile.uses_private_key_jwt:
        return True
    if request.grant_type != "refresh_token" or not isinstance(request.refresh_token, str):
        return False
    rt = getattr(request, "platform_live_refresh_token", None)
    family = rt.token_family if rt is not None else (
        RefreshToken.objects.filter(token_checksum=checksum(request.refresh_token))
        .values_list("token_family", flat=True)
        .first()
    )
    return family is not None and AssertedTokenFamily.objects.filter(token_family=family).exists()


def _audiences() -> tuple[str, ...]:
    """What a client assertion's ``aud`` may be: this tenant's issuer (first: what clients should
    send), and its token endpoint URL (RFC 7523's earlier advice)."""
    http_request = current_request.get()
    if http_request is None:
        return ()
    base = issuer(http_request)
    return (base, f"{base}/token/", f"{base}/token")


def _inherit_grant_resource(validator: OAuth2Validator, request, grant: Grant) -> None:
    """DOT's ``_check_and_set_request_resource`` for a code exchange (RFC 8707), on the grant already
    read: the requested resources (repeated ``resource`` parameters recovered from the body) must be
    absolute URIs and within the grant's; none requested inherits the grant's."""
    resource = getattr(request, "resource", None)
    if isinstance(resource, str):
        repeated = [value for key, value in (getattr(request, "decoded_body", None) or []) if key == "resource"]
        if len(repeated) > 1:
            resource = repeated
    if isinstance(resource, list):
        request.resource = resource
    elif isinstance(resource, str) and resource.strip():
        request.resource = [resource]
    else:
        request.resource = []
    validator._validate_resource_uris(request, request.resource)
    granted = grant.resource or []
    if request.resource and granted:
        if any(res not in granted for res in request.resource):
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description="the requested resource is beyond the authorization grant's",
                request=request,
            )
    elif granted:
        validator._validate_resource_uris(request, granted)
        request.resource = granted


def _one_statement_exchange(request, token: dict) -> bool:
    """A code exchange that issues a plain access + refresh pair (no OpenID Connect ID token, which
    DOT's own path stores): saved by ``_save_code_exchange`` in one statement, outside DOT's
    transaction."""
    return request.grant_type == "authorization_code" and bool(token.get("refresh_token")) and not token.get("id_token")


def _touch_profile(application) -> None:
    ClientProfile.objects.filter(application=application).update(last_used_at=timezone.now())


def _client_with_presented(client_id: str, request):
    """The client of ``client_id`` read together with the grant of the presented code or the live
    refresh token presented (both kept on the request), or None when there is no such row."""
    code, refresh_token = request.code, request.refresh_token
    if "\x00" in client_id:
        return None  # DOT's read refuses it (ValueError): so does its fallback
    if request.grant_type == "authorization_code" and isinstance(code, str) and code and "\x00" not in code:
        grant = grant_with_client(code, client_id)
        if grant is None:
            return None
        request.platform_grant = grant
        return grant.application
    if request.grant_type == "refresh_token" and isinstance(refresh_token, str) and refresh_token:
        rt = live_refresh_token_with_client(checksum(refresh_token), client_id, challenge_window_start())
        if rt is None:
            return None
        request.platform_live_refresh_token = rt
        return rt.application
    return None


def _accept_live_refresh_token(rt: RefreshToken, refresh_token: str, client, request) -> bool:
    """DOT's ``validate_refresh_token`` for an unrevoked token: an access token to refresh, not idle
    past ``REFRESH_TOKEN_EXPIRE_SECONDS`` (counted from that access token's expiry), the client's own;
    the user, raw token and row go on the request. The client is compared by id (DOT loads it)."""
    if rt.access_token is None:
        return False
    idle = refresh_token_expire_timedelta()
    if idle and rt.access_token.expires + idle <= timezone.now():
        return False
    request.user = rt.user
    request.refresh_token = refresh_token
    request.refresh_token_instance = rt
    return rt.application_id == client.pk


def _one_statement_refresh(request, token: dict) -> bool:
    """A refresh of a token that was live when validated, answered with a plain new pair (no OpenID
    Connect ID token): rotated by ``_rotate_in_one_statement``, outside DOT's transaction."""
    rt = getattr(request, "refresh_token_instance", None)
    return (
        request.grant_type == "refresh_token"
        and isinstance(rt, RefreshToken)
        and rt.revoked is None
        and rt.access_token_id is not None
        and bool(token.get("access_token") and token.get("refresh_token"))
        and "scope" in token
        and not token.get("id_token")
    )


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


def _verifier_matches(redeemed: RedeemedCode, verifier: str | None) -> bool:
    """PKCE (RFC 7636 §4.6) against the challenge of a code that was already exchanged."""
    if not verifier or not redeemed.code_challenge:
        return False
    if redeemed.code_challenge_method == "S256":
        return code_challenge_method_s256(verifier, redeemed.code_challenge)
    return False  # "plain" is refused at the authorization endpoint (RFC 9700)
