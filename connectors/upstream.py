"""The platform as OAuth client: the requests it makes to a provider, and how their answers are
classified. Callers get a ``TokenSet`` or a ``ConnectorError`` with a stable code; nothing here logs
or puts a token into an error message."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from connectors import http
from connectors.errors import ConnectorError, ProviderUnavailable
from connectors.models import Provider


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_type: str
    expires_in: int | None
    scopes: list[str] | None  # None: the provider did not say (= as requested)
    id_token: str | None = field(repr=False, default=None)


def split_scopes(provider: Provider, value: str) -> list[str]:
    separators = {provider.scope_separator, " ", ","}
    for sep in separators - {" "}:
        value = value.replace(sep, " ")
    return [s for s in value.split() if s]


def _client_auth(provider: Provider, form: dict[str, str]) -> tuple[dict[str, str], tuple[str, str] | None]:
    method = provider.token_endpoint_auth_method
    if method == Provider.AuthMethod.BASIC:
        return form, (provider.client_id, provider.client_secret)
    form = {**form, "client_id": provider.client_id}
    if method == Provider.AuthMethod.POST:
        form["client_secret"] = provider.client_secret
    return form, None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: treat as "no hint", back off on our own schedule


def _post(provider: Provider, url: str, form: dict[str, str]) -> http.Response:
    form, basic = _client_auth(provider, form)
    try:
        return http.request("POST", url, form=form, basic_auth=basic)
    except http.OutboundError as exc:
        if exc.transient:
            raise ProviderUnavailable(exc.code, str(exc)) from exc
        raise ConnectorError(exc.code, str(exc)) from exc


def _token_call(provider: Provider, form: dict[str, str]) -> TokenSet:
    response = _post(provider, provider.token_endpoint, form)
    body = response.json()
    body = body if isinstance(body, dict) else {}
    if response.status == 429 or response.status >= 500:
        raise ProviderUnavailable(
            "provider_unavailable",
            f"the provider answered HTTP {response.status}",
            retry_after=_retry_after(response.headers.get("retry-after")),
        )
    error = body.get("error") if (response.status != 200 or body.get("ok") is False) else None
    if error or response.status != 200:
        code = str(error or "token_request_failed")
        if code not in {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}:
            code = "token_request_failed"
        raise ConnectorError(code, f"the provider refused the token request ({code})")
    if not isinstance(body.get("access_token"), str):
        raise ConnectorError("token_request_failed", "the provider's token response has no access_token")
    expires_in = body.get("expires_in")
    try:
        expires_in = int(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_in = None
    scope = body.get("scope")
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") if isinstance(body.get("refresh_token"), str) else None,
        token_type=str(body.get("token_type") or "Bearer"),
        expires_in=expires_in,
        scopes=split_scopes(provider, scope) if isinstance(scope, str) else None,
        id_token=body.get("id_token") if isinstance(body.get("id_token"), str) else None,
    )


def exchange_code(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return _token_call(provider, form)


@dataclass
class RefreshOutcome:
    tokens: TokenSet | None = None
    attempts: int = 0
    ambiguous: bool = False  # a try failed without an answer: the provider may have rotated already


def refresh(provider: Provider, refresh_token: str, outcome: RefreshOutcome) -> TokenSet:
    """Refresh with retries on transient failures: exponential backoff with full jitter, or the
    provider's ``Retry-After`` when it gives one (a hint above the cap ends the retries)."""
    attempts = settings.CONNECTORS_REFRESH_ATTEMPTS
    cap = settings.CONNECTORS_RETRY_MAX_DELAY_SECONDS
    base = settings.CONNECTORS_RETRY_BASE_DELAY_SECONDS
    while True:
        outcome.attempts += 1
        try:
            outcome.tokens = _token_call(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})
            return outcome.tokens
        except ProviderUnavailable as exc:
            if exc.code != "provider_unavailable":  # no HTTP answer: the provider may have acted
                outcome.ambiguous = True
            if outcome.attempts >= attempts or (exc.retry_after is not None and exc.retry_after > cap):
                raise
            delay = exc.retry_after
            if delay is None:  # full jitter (not for security: S311)
                delay = random.uniform(0, min(cap, base * 2**outcome.attempts))  # noqa: S311
            time.sleep(delay)


def revoke(provider: Provider, token: str, hint: str) -> None:
    """RFC 7009. A 200 (also for an unknown token) is success; anything else raises."""
    if not provider.revocation_endpoint:
        return
    response = _post(provider, provider.revocation_endpoint, {"token": token, "token_type_hint": hint})
    if response.status == 429 or response.status >= 500:
        raise ProviderUnavailable("provider_unavailable", f"revocation answered HTTP {response.status}")
    if response.status != 200:
        raise ConnectorError("revocation_failed", f"revocation answered HTTP {response.status}")


def userinfo(provider: Provider, access_token: str) -> dict[str, Any]:
    if not provider.userinfo_endpoint:
        return {}
    try:
        response = http.request("GET", provider.userinfo_endpoint, bearer=access_token)
    except http.OutboundError as exc:
        raise ProviderUnavailable(exc.code, str(exc)) if exc.transient else ConnectorError(exc.code, str(exc)) from exc
    if response.status == 401:
        raise ConnectorError("invalid_token", "the provider refused the access token")
    body = response.json()
    if response.status != 200 or not isinstance(body, dict):
        raise ConnectorError("userinfo_failed", f"userinfo answered HTTP {response.status}")
    return body

