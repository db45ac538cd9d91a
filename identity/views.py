"""Sign-in through the tenant's identity provider, and its back-channel logout.

- ``POST sso/<key>/start/`` (from the login page's "Sign in with NAME"): a new transaction in the
  browser's session, then the provider's authorization URL (code, PKCE S256, state, nonce).
- ``GET sso/callback/``, the tenant's one redirect URI: the state names the transaction (and so the
  provider) in *this* browser's session and is removed when read; RFC 9207 ``iss`` is checked when
  sent (and required when the provider says it sends it); the code is exchanged and the ID token
  validated (``identity.rp``); ``identity.sign_in`` finds the member; Django's ``login``.
- ``POST sso/backchannel-logout/``: no CSRF (the provider posts it), 200 or 400.
Every refusal shows a stable code on an error page (status 400/403) and is audited.
"""

from __future__ import annotations

import logging

from authlib.integrations.base_client.errors import OAuthError
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from joserfc.errors import JoseError

from accounts.views import GatedLoginView
from identity import rp
from identity.errors import IdentityError
from identity.forms import SsoPolicyLoginForm
from identity.logout import backchannel_logout
from identity.selectors import enabled_providers, provider_by_key, sso_required
from identity.sign_in import resolve_member
from observability import audit

logger = logging.getLogger(__name__)
BACKEND = "django.contrib.auth.backends.ModelBackend"


class TenantLoginView(GatedLoginView):
    """The tenant's sign-in page: password (under the SSO policy) and "Sign in with NAME"."""

    form_class = SsoPolicyLoginForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sso_providers"] = list(enabled_providers())
        context["sso_required"] = sso_required()
        return context


def _safe_next(request: HttpRequest, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, require_https=request.is_secure()):
        return value
    return resolve_url("account")


def _refuse(request: HttpRequest, code: str, message: str, *, status: int = 400, user_id: int | None = None):
    audit.record(
        event="sso_sign_in", outcome="refused", auth_class=code, user_id=user_id, client_id="", request=request
    )
    return render(request, "identity/error.html", {"code": code, "message": message}, status=status)


@require_POST
@never_cache
def start(request: HttpRequest, key: str) -> HttpResponse:
    provider = provider_by_key(key)
    if provider is None:
        return _refuse(request, "unknown_provider", "This identity provider is not offered here.", status=404)
    redirect_uri = request.build_absolute_uri(reverse("identity:callback"))
    try:
        url = rp.begin(
            request, provider, redirect_uri=redirect_uri, next_url=_safe_next(request, request.POST.get("next"))
        )
    except IdentityError as exc:
        return _refuse(request, exc.code, "The identity provider cannot be reached.", status=502)
    return HttpResponseRedirect(url)


@require_GET
@never_cache
def callback(request: HttpRequest) -> HttpResponse:
    transaction_data = rp.pending(request)
    if transaction_data is None:  # unknown, expired, another browser's, or already used
        return _refuse(request, "invalid_state", "This sign-in link is not valid in this browser. Start again.")
    provider = provider_by_key(transaction_data.get("provider", ""))
    if provider is None:
        rp.forget(request)
        return _refuse(request, "unknown_provider", "This identity provider is not offered here.")
    returned_issuer = request.GET.get("iss")
    expects_iss = provider.metadata.get("authorization_response_iss_parameter_supported") is True
    if (returned_issuer is not None and returned_issuer != provider.issuer) or (
        returned_issuer is None and expects_iss
    ):
        rp.forget(request)  # RFC 9207: the answer comes from another issuer than the one asked
        return _refuse(request, "issuer_mismatch", "The answer did not come from the expected identity provider.")
    if request.GET.get("error"):
        rp.forget(request)
        return _refuse(request, "provider_refused", "The identity provider did not sign you in.", status=403)
    try:
        claims = rp.finish(request, provider)
    except IdentityError as exc:
        return _refuse(request, exc.code, "The identity provider's answer could not be checked.", status=502)
    except (OAuthError, JoseError, ValueError) as exc:
        logger.info("sso: ID token or code refused (%s)", type(exc).__name__)
        return _refuse(request, "id_token_invalid", "The identity provider's answer could not be checked.")
    try:
        user, how = resolve_member(tenant=request.tenant, provider=provider, claims=claims)
    except IdentityError as exc:
        return _refuse(request, exc.code, "This account cannot sign in here.", status=403)
    request.identity_sign_in = (provider, claims.get("sid") if isinstance(claims.get("sid"), str) else "")
    login(request, user, backend=BACKEND)
    audit.record(event="sso_sign_in", outcome=how, user_id=user.pk, client_id="", request=request)
    return HttpResponseRedirect(_safe_next(request, transaction_data.get("next")))


@csrf_exempt
@require_POST
@never_cache
def backchannel(request: HttpRequest) -> HttpResponse:
    try:
        ended = backchannel_logout(token=request.POST.get("logout_token", ""))
    except IdentityError as exc:
        audit.record(event="backchannel_logout", outcome="refused", auth_class=exc.code, client_id="", request=request)
        return JsonResponse({"error": "invalid_request", "error_description": str(exc)}, status=400)
    audit.record(event="backchannel_logout", outcome=f"ended_{min(ended, 99)}", client_id="", request=request)
    response = HttpResponse(status=200)
    response["Cache-Control"] = "no-store"
    return response
