"""The resource server's half of step-up for clients that refresh instead of re-authorizing: an
``insufficient_scope`` answered over HTTP is recorded against the token's family (oauth.stepup)."""

from __future__ import annotations

from django.http import HttpRequest

from mcp_tools.auth import bearer_token
from mcp_tools.challenges import AuthClass, AuthFailure
from oauth.stepup import record_step_up_challenge


def note_http_challenge(request: HttpRequest, failure: AuthFailure) -> None:
    """Called only on the path that answers 403 (never on the hot path)."""
    if failure.kind is not AuthClass.INSUFFICIENT_SCOPE:
        return
    token = bearer_token(request)
    if token is not None:
        record_step_up_challenge(token, failure.scopes)
