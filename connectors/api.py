"""The connections REST API (DRF), ``H/t/<slug>/api/connections/``: list accounts and their status,
force a refresh, disconnect. Never a token. Callers: a signed-in member (session, CSRF) or a platform
token with ``connections`` whose audience (RFC 8707) covers this API; ``?all=1`` (every member's
accounts) needs a tenant admin (session) or ``connections.admin``. Today the authorization server
issues tokens for the MCP resource only, and DOT's ``OAuth2Authentication`` refuses those here (audience
check), so bearer access waits for the API to become an allowed resource. Thin: each method calls one
service or selector."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors import selectors, services, tokens
from connectors.errors import ConnectorError, ProviderUnavailable, ReauthRequired
from connectors.models import ConnectedAccount
from tenants.selectors import active_membership


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


def _token_scopes(request: Request) -> set[str] | None:
    token = request.auth
    return set(token.scope.split()) if token is not None and hasattr(token, "scope") else None


class MemberWithConnectionsAccess(BasePermission):
    """An active member of this tenant; a token also needs the ``connections`` scope."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        membership = active_membership(user.pk, request.tenant.pk)
        if membership is None:
            return False
        request.membership = membership
        scopes = _token_scopes(request)
        return scopes is None or bool({"connections", "connections.admin"} & scopes)


def _is_admin(request: Request) -> bool:
    scopes = _token_scopes(request)
    if scopes is not None:
        return "connections.admin" in scopes and request.membership.is_admin
    return request.membership.is_admin


class ConnectionsAPIView(APIView):
    authentication_classes = [SessionAuthentication, OAuth2Authentication]
    permission_classes = [MemberWithConnectionsAccess]


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
    def post(self, request: Request, key: str) -> Response:
        account = _account_or_404(request.user.pk, key)
        try:
            tokens.refresh_account(account_id=account.pk, margin_seconds=10**9)  # forced: any token is "expiring"
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
