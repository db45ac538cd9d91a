"""The resource server's half of step-up for clients that refresh instead of re-authorizing: an
``insufficient_scope`` answered over HTTP is recorded against the token's family (oauth.stepup)."""

from __future__ import annotations

from mcp_tools.challenges import AuthClass, AuthFailure
from oauth.stepup import record_step_up_challenge


def note_http_challenge(token: str | None, failure: AuthFailure) -> None:
    """Called only on the path that answers 403 (never on the hot path); ``token``: the request's
    bearer token, as the view read it."""
    if failure.kind is not AuthClass.INSUFFICIENT_SCOPE:
        return
    if token is not None:
        record_step_up_challenge(token, failure.scopes)
