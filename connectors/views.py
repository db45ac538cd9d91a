"""The connect pages (signed-in tenant members): list, connect, the one callback, disconnect.
Thin: each view calls one service or selector."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors import selectors, services
from connectors.errors import ConnectorError
from tenants.views import members_only

# what the callback page says for each error code (the code itself is shown too)
CALLBACK_ERRORS = {
    "access_denied": "You declined the request at the provider. Nothing was connected.",
    "provider_error": "The provider could not complete the request.",
    "missing_state": "The provider's answer is incomplete. Start again.",
    "unknown_state": "This connection link is not known here. Start again from the connections page.",
    "state_replayed": "This connection link was already used. Start again from the connections page.",
    "state_expired": "This connection attempt took longer than ten minutes. Start again.",
    "state_mismatch": "This connection was started by another account. Sign in as that account or start again.",
    "issuer_mismatch": "The answer did not come from the expected provider.",
    "issuer_missing": "The answer did not say which provider it came from, which this provider always does.",
    "nonce_mismatch": "The provider's identity token does not belong to this attempt.",
    "invalid_id_token": "The provider's identity token could not be verified.",
    "id_token_missing": "The provider sent no identity token.",
    "id_token_issuer_mismatch": "The identity token was issued by another provider.",
    "id_token_audience_mismatch": "The identity token was issued to another application.",
    "id_token_expired": "The identity token has expired. Start again.",
    "jwks_unavailable": "The provider's signing keys could not be fetched. Try again in a moment.",
    "identity_mismatch": "The provider named two different accounts in its answer.",
    "provider_changed": "An administrator changed this provider while you were connecting. Start again.",
    "revocation_pending": (
        "Your previous connection could not be revoked at the provider yet, so a new one cannot start. "
        "Try again in a moment."
    ),
    "invalid_grant": "The provider did not accept the authorization code. Start again.",
    "invalid_client": "The provider does not accept this workspace's client credentials. Ask an administrator.",
    "unauthorized_client": "The provider does not allow this workspace's client to connect. Ask an administrator.",
    "token_request_failed": "The provider refused to issue tokens.",
    "provider_unavailable": "The provider is not answering right now. Try again in a moment.",
    "timeout": "The provider did not answer in time. Try again in a moment.",
    "connection_failed": "The provider could not be reached. Try again in a moment.",
}


def _provider_or_404(key: str):
    provider = selectors.provider_by_key(key)
    if provider is None:
        raise Http404("no such provider")
    return provider


def _error_page(request: HttpRequest, exc: ConnectorError) -> HttpResponse:
    status = 502 if exc.transient else 400
    message = CALLBACK_ERRORS.get(exc.code, "The connection could not be completed.")
    return render(request, "connectors/error.html", {"code": exc.code, "message": message}, status=status)


@require_GET
@members_only
def connections(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "connectors/connections.html",
        {"rows": selectors.connections_overview(request.user.pk), "notice": request.GET.get("done", "")},
    )


@require_http_methods(["GET", "POST"])
@members_only
def connect(request: HttpRequest, key: str) -> HttpResponse:
    provider = _provider_or_404(key)
    if request.method == "GET":
        account = selectors.account_of_user(request.user.pk, key)
        return render(request, "connectors/connect.html", {"provider": provider, "account": account})
    try:
        url = services.start_connect(
            user_id=request.user.pk,
            provider=provider,
            redirect_uri=request.build_absolute_uri(reverse("connectors:callback")),
        )
    except ConnectorError as exc:
        return _error_page(request, exc)
    return HttpResponseRedirect(url)


@require_GET
@members_only
def callback(request: HttpRequest) -> HttpResponse:
    params = services.CallbackParams(
        state=request.GET.get("state", ""),
        code=request.GET.get("code", ""),
        error=request.GET.get("error", ""),
        error_description=request.GET.get("error_description", ""),
        iss=request.GET.get("iss", ""),
    )
    try:
        account = services.complete_connect(params=params, user_id=request.user.pk)
    except ConnectorError as exc:
        return _error_page(request, exc)
    return redirect(reverse("connectors:list") + f"?done=connected:{account.provider.key}")


@require_POST
@members_only
def disconnect(request: HttpRequest, key: str) -> HttpResponse:
    _provider_or_404(key)
    try:
        services.disconnect(user_id=request.user.pk, provider_key=key)
    except ConnectorError as exc:
        return render(request, "connectors/error.html", {"code": exc.code, "message": str(exc)}, status=404)
    return redirect(reverse("connectors:list") + f"?done=disconnected:{key}")
