"""What the authorization server reports to observability (metrics and the audit trail): token
endpoint answers, refresh outcomes, reuse detections and revocations. One call per place in
``oauth.validators`` and ``oauth.views.token``; nothing here changes a decision, and no token, code,
secret or verifier is passed on (only grant types, OAuth error codes, user and client ids)."""

from __future__ import annotations

import json

from django.db import connection
from django.http import HttpRequest, HttpResponse

from oauth.grant_types import JWT_BEARER
from observability import audit, metrics

GRANT_TYPES = {"authorization_code", "refresh_token", "client_credentials"}
GRANT_LABELS = {JWT_BEARER: "jwt_bearer"}  # long grant type URNs as metric labels and audit event names
# RFC 6749 §5.2 error codes plus the platform's own; anything else is counted as "error"
ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "slow_down",
    "access_denied",
    "server_error",
}


def _tenant() -> str:
    return connection.schema_name


def token_answer(request: HttpRequest, response: HttpResponse, client_id: str | None) -> None:
    """One token-endpoint answer: counted by grant type and outcome, recorded in the audit trail."""
    grant_type = request.POST.get("grant_type", "")
    grant_type = grant_type if grant_type in GRANT_TYPES else GRANT_LABELS.get(grant_type, "other")
    if response.status_code == 200:
        outcome = "issued"
    else:
        try:
            error = json.loads(response.content).get("error")
        except (ValueError, AttributeError):
            error = None
        outcome = error if error in ERRORS else "error"
    metrics.token_answer(_tenant(), grant_type, outcome)
    if outcome == "slow_down":
        return  # over the rate limit: counted only, so a flood of refused requests writes no rows
    if outcome == "invalid_client":  # no client known: counted per minute, not one row per request
        audit.record_unattributed(event=f"token.{grant_type}", outcome=outcome)
        return
    audit.record(
        event=f"token.{grant_type}",
        outcome=outcome,
        user_id=getattr(request, "audit_user_id", None),
        client_id=client_id,
        request=request,
    )


def refresh(outcome: str) -> None:
    """A refresh-token presentation: rotated, duplicate, refused (invalid/expired/step-up) or reuse."""
    metrics.refresh(_tenant(), outcome)


def family_revoked(reason: str, *, client_id: str | None, user_id: int | None) -> None:
    """A replay (``refresh_token`` reuse or ``authorization_code`` replay) revoked a token family."""
    tenant = _tenant()
    metrics.reuse(tenant, reason)
    if reason == "refresh_token":
        metrics.refresh(tenant, "reuse")
    audit.record(
        event="refresh_reuse" if reason == "refresh_token" else "code_replay",
        outcome="family_revoked",
        user_id=user_id,
        client_id=client_id,
    )


def revoked(*, client_id: str | None, user_id: int | None) -> None:
    """A token revoked at the revocation endpoint (RFC 7009)."""
    metrics.revocation(_tenant(), "revoke_endpoint")
    audit.record(event="revocation", outcome="revoked", user_id=user_id, client_id=client_id)


def client_assertion_refused(reason: str, *, client_id: str | None, request: HttpRequest | None) -> None:
    """A client assertion (private_key_jwt) refused at the token or revocation endpoint: the reason is
    the outcome (a closed vocabulary, ``oauth.client_assertion``); the client id only for a client the
    platform knows."""
    audit.record(event="client_assertion", outcome=reason, client_id=client_id or "", request=request)


def id_jag(outcome: str, *, client_id: str, user_id: int | None, request: HttpRequest | None) -> None:
    """An ID-JAG presented at the token endpoint (``oauth.id_jag``): ``accepted_<how the member was
    found>`` or the reason of the refusal (a closed vocabulary). The token answer is recorded too."""
    audit.record(event="id_jag", outcome=outcome, user_id=user_id, client_id=client_id, request=request)
