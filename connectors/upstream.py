"""The platform as OAuth client: the requests it makes to a provider, and how their answers are
classified. Callers get a ``TokenSet`` or a ``ConnectorError`` with a stable code; nothing here logs
or puts a token into an error message.

Every call goes through ``call``: within the provider's concurrency bound (``connectors.slots``) and
the total deadline of ``connectors.http``; answers are validated by ``connectors.answers`` before
anyone uses them. Refreshes also report to the provider's breaker (``connectors.breaker``)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from connectors import answers, breaker, http, slots
from connectors.answers import InvalidAnswer, TokenSet
from connectors.errors import ConnectorError, ProviderUnavailable
from connectors.models import Provider

__all__ = ["TokenSet", "call", "exchange_code", "refresh", "revoke", "userinfo"]

# failures that came without an answer: the provider may have acted on the request (rotated)
NO_ANSWER = frozenset({"timeout", "connection_failed"})


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


def call(provider: Provider, method: str, url: str, **kwargs: Any) -> http.Response:
    """One request to ``provider`` (any of its endpoints or its API): in one of its concurrency
    slots (``ProviderBusy`` at once when none is free), ended at the deadline; a transient failure
    is ``ProviderUnavailable``, a refused URL a ``ConnectorError``."""
    with slots.slot(breaker.breaker_key(provider)):
        try:
            return http.request(method, url, **kwargs)
        except http.OutboundError as exc:
            if exc.transient:
                raise ProviderUnavailable(exc.code, str(exc)) from exc
            raise ConnectorError(exc.code, str(exc)) from exc


def _post(provider: Provider, url: str, form: dict[str, str]) -> http.Response:
    form, basic = _client_auth(provider, form)
    return call(provider, "POST", url, form=form, basic_auth=basic)


def _token_call(provider: Provider, form: dict[str, str]) -> TokenSet:
    response = _post(provider, provider.token_endpoint, form)
    return answers.token_answer(response.status, response.body, response.headers, lambda v: split_scopes(provider, v))


def exchange_code(provider: Provider, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    return _token_call(provider, form)


@dataclass
class RefreshOutcome:
    tokens: TokenSet | None = None
    attempts: int = 0
    ambiguous: bool = False  # a try failed without a usable answer: the provider may have rotated already
    rotated_refresh_token: str | None = None  # from an otherwise unusable answer: keep it


def refresh(
    provider: Provider, refresh_token: str, outcome: RefreshOutcome, admission: breaker.Admission | None = None
) -> TokenSet:
    """Refresh with retries on transient failures: exponential backoff with full jitter, or the
    provider's ``Retry-After`` when it gives one (a hint above the cap ends the retries). Every
    failure is reported to the provider's breaker (``admission``: from ``breaker.admit``); once it
    opens, no more tries. An unusable answer is not retried: the provider answered, so it may have
    rotated the refresh token we hold (a valid rotated one in the answer is handed back)."""
    admission = admission or breaker.admit(provider)
    attempts = settings.CONNECTORS_REFRESH_ATTEMPTS
    cap = settings.CONNECTORS_RETRY_MAX_DELAY_SECONDS
    base = settings.CONNECTORS_RETRY_BASE_DELAY_SECONDS
    while True:
        outcome.attempts += 1
        try:
            outcome.tokens = _token_call(provider, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        except InvalidAnswer as exc:
            outcome.rotated_refresh_token = exc.refresh_token
            outcome.ambiguous = exc.refresh_token is None
            breaker.failed(provider, admission, "invalid_response")
            raise
        except slots.ProviderBusy:
            outcome.attempts -= 1  # no call was made
            raise
        except ProviderUnavailable as exc:
            if exc.code in NO_ANSWER:
                outcome.ambiguous = True
            opened = breaker.failed(provider, admission, breaker.failure_class(exc), exc.retry_after)
            if opened or outcome.attempts >= attempts or (exc.retry_after is not None and exc.retry_after > cap):
                raise
            delay = exc.retry_after
            if delay is None:  # full jitter (not for security: S311)
                delay = random.uniform(0, min(cap, base * 2**outcome.attempts))  # noqa: S311
            time.sleep(delay)
            continue
        breaker.succeeded(provider, admission)
        return outcome.tokens


def revoke(provider: Provider, token: str, hint: str) -> None:
    """RFC 7009. A 200 (also for an unknown token) is success; anything else raises. The body is
    never read."""
    if not provider.revocation_endpoint:
        return
    response = _post(provider, provider.revocation_endpoint, {"token": token, "token_type_hint": hint})
    if response.status == 429 or response.status >= 500:
        raise ProviderUnavailable("provider_unavailable", f"revocation answered HTTP {response.status}")
    if response.status != 200:
        raise ConnectorError("revocation_failed", f"revocation answered HTTP {response.status}")


def userinfo(provider: Provider, access_token: str) -> dict[str, Any]:
    """The user's claims at the provider, reduced to plain bounded values (``answers.claims``)."""
    if not provider.userinfo_endpoint:
        return {}
    response = call(provider, "GET", provider.userinfo_endpoint, bearer=access_token)
    return answers.userinfo_answer(response.status, response.body, required=("sub", provider.account_id_claim))

