"""Step-up for clients that refresh instead of re-authorizing.

On ``403 insufficient_scope`` the TS SDK 1.x (modelcontextprotocol/typescript-sdk#2255) refreshes its
token without a ``scope`` parameter, gets the same scope back, retries and gives up. So when the
resource server challenges a token, the token's family is recorded here (one statement, on the 403
path only); for ``OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS`` afterwards a refresh of that family that does
not ask for the challenged scope is answered ``invalid_grant``. The SDK then drops its tokens
(``invalidateCredentials('tokens')``) and starts a new authorization with the challenged scope. After
the window the family refreshes normally, so a client that never re-authorizes keeps its grants.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from oauth import token_writes
from oauth.models import StepUpChallenge


def record_step_up_challenge(raw_access_token: str, scopes: Iterable[str]) -> None:
    """The resource server answered ``insufficient_scope`` with ``scopes`` to this access token."""
    digest = hashlib.sha256(raw_access_token.encode()).hexdigest()
    token_writes.record_step_up(digest, " ".join(sorted(set(scopes))))


def pending_step_up(token_family: uuid.UUID | None, requested: Iterable[str]) -> str | None:
    """The challenged scope a refresh of ``token_family`` asking for ``requested`` fails to cover,
    if the family was challenged within the window; ``None`` when the refresh may go ahead."""
    if token_family is None:
        return None
    challenged = (
        StepUpChallenge.objects.filter(token_family=token_family, challenged_at__gt=challenge_window_start())
        .values_list("scope", flat=True)
        .first()
    )
    return uncovered(challenged, requested)


def challenge_window_start():
    return timezone.now() - timedelta(seconds=settings.OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS)


def uncovered(challenged: str | None, requested: Iterable[str]) -> str | None:
    """``challenged`` (a family's scope challenged within the window, read with the refresh token by
    ``oauth.validators``) unless ``requested`` covers it."""
    if challenged is None or set(challenged.split()) <= set(requested):
        return None
    return challenged
