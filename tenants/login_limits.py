"""The login limits beside django-axes, on every login page (tenant, tenant admin, platform admin).

django-axes locks a (username, address) pair after ``LOGIN_FAILURE_LIMIT`` failures within
``LOGIN_LOCKOUT_SECONDS`` (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``): whoever keeps
guessing one account from one address is stopped, and nobody else is. django-axes compares every
parameter set with that one limit, so the two wider rules are here, on the platform's fixed-window
counters (``tenants.ratelimit``: per tenant schema, failing open when Redis does not answer):

- **an address** (an IPv6 client's /64, ``tenants.http.address_bucket``) is locked after
  ``LOGIN_ADDRESS_FAILURE_LIMIT`` failures for any usernames within the window: 429 until the window
  ends. One office NAT, university or mobile carrier puts thousands of users behind one address, so
  the limit is far above what their typing mistakes reach, and only guessing across accounts does;
- **an account** (the username) is never locked from every address, or anyone who knows an email
  could keep its owner out. After ``LOGIN_ACCOUNT_FAILURE_LIMIT`` failures within the window, from
  any addresses, its logins are throttled: one attempt per ``LOGIN_ACCOUNT_THROTTLE_SECONDS``, the
  others answered at once (never by sleeping in a request thread) with the generic error and
  ``Retry-After``; reaching the limit is an alert (``login_limit_reached``: audit trail, health page,
  ``platform_login_limits_total``).

Failures are counted from ``user_login_failed``; an attempt refused before authentication (a locked
pair, address or throttled account) is not a failure and counts nowhere, so a locked-out user's
retries do not push the other counters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

from accounts.lockout import attempted_username
from tenants import ratelimit
from tenants.http import address_bucket
from tenants.signals import login_limit_reached


@dataclass(frozen=True)
class Refusal:
    locked: bool  # True: the address is locked (429); False: the account is throttled (the form's error)
    retry_after: int


def _window() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())  # LOGIN_LOCKOUT_SECONDS


def _address_bucket(request: HttpRequest) -> str:
    return f"login-address:{address_bucket(request)}"


def _account_bucket(username: str) -> str:
    return f"login-account:{hashlib.sha256(username.encode()).hexdigest()[:32]}"  # no email in a cache key


def refusal(request: HttpRequest, username: str | None) -> Refusal | None:
    """Before authentication: is this attempt refused by the address or account limit?"""
    window = _window()
    if ratelimit.current(_address_bucket(request), window) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
        return Refusal(locked=True, retry_after=ratelimit.retry_after(window))
    if username and ratelimit.current(_account_bucket(username), window) >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
        interval = settings.LOGIN_ACCOUNT_THROTTLE_SECONDS
        allowed, retry_after = ratelimit.hit(f"login-throttle:{_account_bucket(username)}", 1, interval)
        if not allowed:
            return Refusal(locked=False, retry_after=retry_after)
    return None


def count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    """``user_login_failed``: count the failure against the address and the account."""
    if request is None or _refused_before_authentication(request):
        return
    username = attempted_username(request, credentials)
    window = _window()
    buckets = [(_address_bucket(request), window)] + ([(_account_bucket(username), window)] if username else [])
    counts = ratelimit.increment(buckets)
    if counts[0] == settings.LOGIN_ADDRESS_FAILURE_LIMIT:  # reached now: once per window
        login_limit_reached.send(sender=__name__, request=request, kind="address", username=username)
    if username and counts[1] == settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
        login_limit_reached.send(sender=__name__, request=request, kind="account", username=username)


def _refused_before_authentication(request: HttpRequest) -> bool:
    """django-axes refused the attempt as a locked pair before checking the password: its backend
    sets ``axes_locked_out`` and its failure handler then records nothing (no
    ``axes_failures_since_start``). The failure that reaches the pair limit is counted."""
    return bool(getattr(request, "axes_locked_out", False)) and not hasattr(request, "axes_failures_since_start")
