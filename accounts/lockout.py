"""django-axes hooks: which username an attempt counts against, and the lockout answer.

Attempts are recorded in the schema where the login happens (axes is a shared *and* a tenant app),
so a lockout at one tenant never locks the same email or address at another; the platform admin's
attempts live in the public schema. A (username, address) pair reaching ``LOGIN_FAILURE_LIMIT``
failures within ``LOGIN_LOCKOUT_SECONDS`` is locked (``AXES_LOCKOUT_PARAMETERS``); the address and
account limits are ``tenants.login_limits``, whose address lock gives this same answer.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.forms import LOGIN_FAILED

# axes stores the username in a varchar(255); no account's email is longer (EmailField, 254)
USERNAME_MAX = 255


def attempted_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """Emails are stored lower-case; count ``Alice@X`` and ``alice@x`` as the same account. An
    overlong value cannot be an account; it is cut to the column so the attempt still counts."""
    source = credentials if credentials else request.POST
    value = source.get("username") if source else None
    return value.strip().lower()[:USERNAME_MAX] if isinstance(value, str) and value.strip() else None


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The same answer whatever was submitted (right or wrong password, member or not, known or unknown
    account), in the login pages' one generic words: only the status and ``Retry-After`` say when to
    come back (a locked address: when its window ends, ``login_retry_after``; a pair: the cool-off)."""
    response = render(request, "accounts/locked_out.html", {"message": LOGIN_FAILED}, status=429)
    seconds = getattr(request, "login_retry_after", None) or int(settings.AXES_COOLOFF_TIME.total_seconds())
    response["Retry-After"] = str(seconds)
    return response
