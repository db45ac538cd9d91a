"""Writes and reads on the platform's OAuth state (the current tenant's schema)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from oauth2_provider.settings import oauth2_settings

from oauth.models import ConsentGrant, RefreshSuccessor, StepUpChallenge

logger = logging.getLogger(__name__)


def prior_consent(user, application: Application) -> set[str]:
    grant = ConsentGrant.objects.filter(user=user, application=application).only("scope").first()
    return grant.scopes if grant else set()


def record_consent(user, application: Application, scopes: list[str]) -> None:
    with transaction.atomic():
        grant, _ = ConsentGrant.objects.select_for_update().get_or_create(user=user, application=application)
        grant.scope = " ".join(sorted(grant.scopes | set(scopes)))
        grant.save(update_fields=["scope", "updated_at"])


def revoke_user_tokens(user_id: int) -> int:
    """Revoke every token and pending code the user holds in the current tenant; forget their consents."""
    with transaction.atomic():
        ConsentGrant.objects.filter(user_id=user_id).delete()
        return _revoke(user_id=user_id)


def revoke_all_tokens() -> int:
    """Revoke every token in the current tenant (used when the tenant is deactivated)."""
    with transaction.atomic():
        return _revoke()


def _revoke(**owner: int) -> int:
    RefreshToken.objects.filter(revoked__isnull=True, **owner).update(revoked=timezone.now(), access_token=None)
    deleted, _ = AccessToken.objects.filter(**owner).delete()
    Grant.objects.filter(**owner).delete()
    return deleted


def expire_unused_clients(now=None) -> int:
    """Delete dynamically registered clients nobody has used for ``OAUTH_DCR_CLIENT_IDLE_SECONDS``
    (counted from their last token, or their registration if they never got one)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.OAUTH_DCR_CLIENT_IDLE_SECONDS)
    stale = Application.objects.filter(registration_source=Application.RegistrationSource.DCR).filter(
        Q(profile__last_used_at__lt=cutoff)
        | Q(profile__last_used_at__isnull=True, profile__created_at__lt=cutoff)
        | Q(profile__isnull=True, created__lt=cutoff)
    )
    live = AccessToken.objects.filter(expires__gt=now).exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
    stale = stale.exclude(pk__in=live.values("application_id"))
    count, _ = stale.delete()
    if count:
        logger.info("expired %d unused dynamically registered clients", count)
    return count


def drop_expired_refresh_state(now=None) -> int:
    """Forget successor pairs past the refresh grace window (normally dropped when the successor is
    used) and step-up challenges past theirs."""
    now = now or timezone.now()
    grace = timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
    step_up = timedelta(seconds=settings.OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS)
    pairs, _ = RefreshSuccessor.objects.filter(created_at__lte=now - grace).delete()
    challenges, _ = StepUpChallenge.objects.filter(challenged_at__lte=now - step_up).delete()
    return pairs + challenges
