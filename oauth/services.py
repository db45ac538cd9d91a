"""Writes on the platform's OAuth state (the current tenant's schema); every service takes keyword
arguments only. Reads are in ``oauth.selectors``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from oauth2_provider.settings import oauth2_settings

from oauth.client_policy import ClientAuthentication, ClientFacts
from oauth.hashers import MIN_RANDOM_LENGTH
from oauth.models import (
    AssertedTokenFamily,
    ClientAssertionJti,
    ClientProfile,
    ConsentGrant,
    IdJagToken,
    RefreshSuccessor,
    StepUpChallenge,
)
from oauth.selectors import choose_challenge_channel

logger = logging.getLogger(__name__)


def record_consent(*, user, application: Application, scopes: list[str]) -> None:
    with transaction.atomic():
        grant, _ = ConsentGrant.objects.select_for_update().get_or_create(user=user, application=application)
        grant.scope = " ".join(sorted(grant.scopes | set(scopes)))
        grant.save(update_fields=["scope", "updated_at"])


def rehash_client_secret(*, stored: str, secret: str) -> None:
    """Store ``secret`` (just verified against ``stored``) under the client-secret hasher: a secret
    hashed before it (PBKDF2, a million iterations) becomes fast to check from its next use on. Matched
    on the old hash (salted, so one application), so of two concurrent upgrades the second does
    nothing. A short, typed secret keeps the password hasher (``oauth.hashers``)."""
    if len(secret) < MIN_RANDOM_LENGTH:
        return
    rehashed = make_password(secret, hasher=oauth2_settings.CLIENT_SECRET_HASHER)
    Application.objects.filter(client_secret=stored).update(client_secret=rehashed)


def revoke_user_tokens(*, user_id: int) -> int:
    """Revoke every token and pending code the user holds in the current tenant; forget their consents."""
    with transaction.atomic():
        ConsentGrant.objects.filter(user_id=user_id).delete()
        return _revoke(user_id=user_id)


def revoke_all_tokens() -> int:
    """Revoke every token in the current tenant (used when the tenant is deactivated)."""
    with transaction.atomic():
        return _revoke()


def revoke_tokens(*, access_token_ids: Iterable[int] = (), refresh_token_ids: Iterable[int] = ()) -> int:
    """Revoke the given tokens (tenant admin). A token ends its whole session: every refresh token of
    its family is revoked and their access tokens deleted. Returns how many access tokens died."""
    access_token_ids, refresh_token_ids = list(access_token_ids), list(refresh_token_ids)
    with transaction.atomic():
        chosen = RefreshToken.objects.filter(Q(pk__in=refresh_token_ids) | Q(access_token_id__in=access_token_ids))
        families = {f for f in chosen.values_list("token_family", flat=True) if f is not None}
        refresh = RefreshToken.objects.filter(Q(pk__in=chosen.values("pk")) | Q(token_family__in=families))
        access = list(
            AccessToken.objects.filter(
                Q(pk__in=access_token_ids) | Q(pk__in=refresh.exclude(access_token=None).values("access_token_id"))
            ).values_list("pk", flat=True)
        )
        now = timezone.now()
        refresh.filter(revoked__isnull=True).update(revoked=now, updated=now, access_token=None)
        deleted, _ = AccessToken.objects.filter(pk__in=access).delete()
    if deleted:
        logger.info("revoked %d access tokens", deleted)
    return deleted


def revoke_consents(*, ids: Iterable[int]) -> int:
    """Forget the given remembered consents and revoke what each user holds for that client: the next
    authorization asks again. Returns how many consents were revoked."""
    with transaction.atomic():
        grants = list(ConsentGrant.objects.select_for_update().filter(pk__in=list(ids)))
        for grant in grants:
            _revoke(user_id=grant.user_id, application_id=grant.application_id)
        ConsentGrant.objects.filter(pk__in=[g.pk for g in grants]).delete()
    return len(grants)


def _revoke(**owner: int) -> int:
    RefreshToken.objects.filter(revoked__isnull=True, **owner).update(revoked=timezone.now(), access_token=None)
    deleted, _ = AccessToken.objects.filter(**owner).delete()
    Grant.objects.filter(**owner).delete()
    return deleted


def record_id_jag_token(*, access_token: AccessToken, provider) -> IdJagToken:
    """The identity provider record that vouched (with an ID-JAG) for ``access_token``."""
    return IdJagToken.objects.create(access_token=access_token, provider=provider, issuer=provider.issuer)


def revoke_vouched_tokens(*, provider_id: int, keep_issuer: str | None = None) -> int:
    """Revoke the access tokens issued from ID-JAGs of the identity provider record ``provider_id``
    (they have no refresh tokens): all of them, or with ``keep_issuer`` those vouched for under
    another issuer (the record now names another identity provider). Returns how many died."""
    vouched = IdJagToken.objects.filter(provider_id=provider_id)
    if keep_issuer is not None:
        vouched = vouched.exclude(issuer=keep_issuer)
    return _delete_access_tokens(vouched)


def revoke_untrusted_vouched_tokens() -> int:
    """Revoke every ID-JAG token whose identity provider no longer accepts ID-JAGs, is disabled or
    names another issuer now (the sweep behind ``oauth.receivers``)."""
    stale = IdJagToken.objects.exclude(
        provider__accept_id_jag=True, provider__is_enabled=True, provider__issuer=F("issuer")
    )
    return _delete_access_tokens(stale)


def _delete_access_tokens(vouched) -> int:
    with transaction.atomic():
        _, deleted = AccessToken.objects.filter(pk__in=list(vouched.values_list("access_token_id", flat=True))).delete()
    return deleted.get(AccessToken._meta.label, 0)


AUTHENTICATION_FIELDS = ["token_endpoint_auth_method", "signing_alg", "jwks", "jwks_uri", "jwks_expires_at"]


def _apply_authentication(profile: ClientProfile, authentication: ClientAuthentication) -> None:
    """A CIMD document's client authentication onto its profile. A new ``jwks_uri`` forgets the set
    fetched from the old one; the document's own ``jwks`` replaces the set."""
    profile.token_endpoint_auth_method = authentication.method
    profile.signing_alg = authentication.signing_alg
    if authentication.jwks_uri:
        if profile.jwks_uri != authentication.jwks_uri:
            profile.jwks, profile.jwks_expires_at = None, None
    else:
        profile.jwks, profile.jwks_expires_at = authentication.jwks, None
    profile.jwks_uri = authentication.jwks_uri


def create_client_profile(
    *,
    application: Application,
    facts: ClientFacts,
    client_id_host: str = "",
    authentication: ClientAuthentication | None = None,
) -> ClientProfile:
    """Record a newly registered client's profile (DCR and first sight of a CIMD client), choosing its
    challenge channel. The channel is chosen once; afterwards only an admin changes it."""
    profile = ClientProfile(
        application=application,
        application_type=facts.application_type,
        software_id=facts.software_id,
        challenge_channel=choose_challenge_channel(facts=facts, client_id_host=client_id_host),
        jwt_bearer_grant=facts.jwt_bearer,
    )
    if authentication is not None:
        _apply_authentication(profile, authentication)
    with transaction.atomic():
        profile.save(force_insert=True)
    return profile


def update_client_profile(
    *,
    application: Application,
    facts: ClientFacts,
    client_id_host: str = "",
    authentication: ClientAuthentication | None = None,
) -> ClientProfile:
    """Bring a profile in line with a client's updated metadata (RFC 7592 update, re-fetched CIMD
    document): application type and software_id follow the document, and so does a CIMD client's
    authentication (``authentication``) and whether it registered the JWT bearer grant; the channel
    and the resource-server flag stay as they are (an admin's choice wins). Creates the profile if
    missing."""
    with transaction.atomic():
        profile = ClientProfile.objects.select_for_update().filter(application=application).first()
        if profile is None:
            return create_client_profile(
                application=application, facts=facts, client_id_host=client_id_host, authentication=authentication
            )
        profile.application_type = facts.application_type
        profile.software_id = facts.software_id
        profile.jwt_bearer_grant = facts.jwt_bearer
        fields = ["application_type", "software_id", "jwt_bearer_grant"]
        if authentication is not None:
            _apply_authentication(profile, authentication)
            fields += AUTHENTICATION_FIELDS
        profile.save(update_fields=fields)
        return profile


def store_fetched_key_set(*, profile: ClientProfile, jwks: dict | None, max_age: int, now) -> None:
    """Keep a CIMD client's key set fetched from its ``jwks_uri`` (``jwks`` None: the fetch failed,
    the last good set stays) and when it was fetched, which bounds how often an unknown ``kid`` may
    fetch it again."""
    profile.jwks_fetched_at = now
    fields = ["jwks_fetched_at"]
    if jwks is not None:
        profile.jwks, profile.jwks_expires_at = jwks, now + timedelta(seconds=max_age)
        fields += ["jwks", "jwks_expires_at"]
    ClientProfile.objects.filter(pk=profile.pk).update(**{f: getattr(profile, f) for f in fields})


def record_assertion_jti(*, application: Application, jti: str, expires_at) -> bool:
    """Record a client assertion's ``jti`` until ``expires_at``; False when it was recorded before (a
    replay). A database error propagates: the caller refuses the assertion (fails closed)."""
    digest = hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()
    try:
        with transaction.atomic():
            ClientAssertionJti.objects.create(application=application, jti_hash=digest, expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def mark_asserted_family(*, application: Application, token_family) -> None:
    """A token family issued after a client assertion: its refreshes need one too."""
    AssertedTokenFamily.objects.get_or_create(token_family=token_family, defaults={"application": application})


def expire_unused_clients(*, now=None) -> int:
    """Delete dynamically registered and CIMD clients nobody has used for
    ``OAUTH_DCR_CLIENT_IDLE_SECONDS`` (counted from their last token, or their registration / first
    sight if they never got one). A CIMD client that comes back is re-created from its document."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.OAUTH_DCR_CLIENT_IDLE_SECONDS)
    sources = (Application.RegistrationSource.DCR, Application.RegistrationSource.CIMD)
    stale = Application.objects.filter(registration_source__in=sources).filter(
        Q(profile__last_used_at__lt=cutoff)
        | Q(profile__last_used_at__isnull=True, profile__created_at__lt=cutoff)
        | Q(profile__isnull=True, created__lt=cutoff)
    )
    live = AccessToken.objects.filter(expires__gt=now).exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
    stale = stale.exclude(pk__in=live.values("application_id"))
    count, _ = stale.delete()
    if count:
        logger.info("expired %d unused dynamically registered or CIMD clients", count)
    return count


@transaction.atomic
def drop_expired_refresh_state(*, now=None) -> int:
    """Forget successor pairs past the refresh grace window (normally dropped when the successor is
    used), step-up challenges past theirs and the jti of client assertions past their expiry."""
    now = now or timezone.now()
    grace = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
    step_up = timedelta(seconds=settings.OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS)
    pairs, _ = RefreshSuccessor.objects.filter(created_at__lte=now - grace).delete()
    challenges, _ = StepUpChallenge.objects.filter(challenged_at__lte=now - step_up).delete()
    jtis, _ = ClientAssertionJti.objects.filter(expires_at__lte=now).delete()  # an expired assertion fails anyway
    return pairs + challenges + jtis
