"""The connections REST API (DRF), ``H/t/<slug>/api/connections/``: list accounts and their status,
force a refresh (throttled per account), disconnect. Never a token. Callers
(``resource_api.views.TenantAPIView``): a signed-in member (session, CSRF) or a platform token for this
tenant's API (audience ``H/t/<slug>/api``) with ``connections`` or ``connections.admin``; ``?all=1``
(every member's accounts) needs a tenant admin (session) or ``connections.admin``. Thin: each method
calls one service or selector."""

from __future__ import annotations

import math

from django.http import Http404
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from connectors import selectors, services, tokens
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount
from resource_api.views import TenantAPIView, token_scopes


class AccountSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.key")
    provider_name = serializers.CharField(source="provider.display_name")
    user = serializers.EmailField(source="user.email")
    not_granted = serializers.ListField(source="narrower_than_requested", child=serializers.CharField())

    class Meta:
        model = ConnectedAccount
        fields = (
            "provider", "provider_name", "user", "status", "status_reason", "external_account_id",
            "external_account_label", "granted_scopes", "not_granted", "expires_at", "last_refreshed_at",
            "revocation_pending",
        )  # fmt: skip


def _is_admin(request: Request) -> bool:
    scopes = token_scopes(request)  # admin-only scopes are already dropped for non-admins
    if scopes is not None:
        return "connections.admin" in scopes
    return request.membership.is_admin


class ConnectionsAPIView(TenantAPIView):
    required_scopes = ("connections", "connections.admin")


def _account_or_404(user_id: int, key: str) -> ConnectedAccount:
    account = selectors.account_of_user(user_id, key)
    if account is None:
        raise Http404("no such connected account")
    return account


class ConnectionList(ConnectionsAPIView):
    def get(self, request: Request) -> Response:
        if request.query_params.get("all") == "1":
            if not _is_admin(request):
                return Response({"error": "forbidden", "detail": "all accounts need a tenant admin"}, status=403)
            accounts = selectors.all_accounts()
        else:
            accounts = selectors.accounts_of_user(request.user.pk).select_related("user")
        return Response({"connections": AccountSerializer(accounts, many=True).data})


class ConnectionRefresh(ConnectionsAPIView):
    """Refresh now: at most once per account every ``CONNECTORS_FORCED_REFRESH_INTERVAL_SECONDS``
    (each one is a real call to the provider, and a member must not burn the tenant's quota there)."""

    def post(self, request: Request, key: str) -> Response:
        account = _account_or_404(request.user.pk, key)
        wait = services.claim_forced_refresh(account_id=account.pk)
        if wait is not None:
            seconds = math.ceil(wait)
            body = {"error": "slow_down", "detail": "this account was refreshed moments ago", "retry_after": seconds}
            return Response({**body, "retryable": True}, status=429, headers={"Retry-After": str(seconds)})
        try:
            tokens.refresh_account(account_id=account.pk, force=True)
        except ReauthRequired as exc:
            return Response({"error": "needs_reauth", "reason": exc.code, "retryable": False}, status=409)
        except ProviderUnavailable as exc:
            return Response({"error": "provider_unavailable", "reason": exc.code, "retryable": True}, status=503)
        return Response(AccountSerializer(_account_or_404(request.user.pk, key)).data)


class ConnectionDetail(ConnectionsAPIView):
    def get(self, request: Request, key: str) -> Response:
        return Response(AccountSerializer(_account_or_404(request.user.pk, key)).data)

    def delete(self, request: Request, key: str) -> Response:
        try:
            _, outcome = services.disconnect(user_id=request.user.pk, provider_key=key)
        except ConnectorError as exc:
            raise Http404(str(exc)) from exc
        data = AccountSerializer(_account_or_404(request.user.pk, key)).data
        return Response({**data, "detail": outcome.detail})
