"""The account page of a signed-in member: every AI client holding access for them (with what it
can reach through tools: their connected accounts), a Revoke button per client, and their other
sign-in sessions with a sign-out each. Thin: each view calls one selector or service."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from connectors.selectors import accounts_of_user
from declarations.tools import all_tools
from identity.selectors import live_sessions_of
from identity.services import end_sessions
from oauth.user_grants import clients_with_access, revoke_client_access
from tenants.views import members_only


def _connector_scopes() -> set[str]:
    """Scopes that let a client's tool calls use the member's connected accounts: those of the tools the
    connectors app declares (they act through the caller's connected accounts)."""
    tools = all_tools().values()
    return {scope for spec in tools if spec.handler.__module__.startswith("connectors.") for scope in spec.scopes}


@require_GET
@members_only
def account(request: HttpRequest) -> HttpResponse:
    user_id = request.user.pk
    connected = [a for a in accounts_of_user(user_id) if a.status != "revoked"]
    connector_scopes = _connector_scopes()
    clients = clients_with_access(user_id)
    for client in clients:
        client.connected_accounts = connected if client.scopes & connector_scopes else []
    sessions = list(live_sessions_of(user_id))
    context = {
        "clients": clients,
        "sessions": [(s, s.session_key == request.session.session_key) for s in sessions],
        "notice": request.session.pop("account_notice", ""),
    }
    return render(request, "portal/account.html", context)


@require_POST
@members_only
def revoke_client(request: HttpRequest, application_id: int) -> HttpResponse:
    held = {c.application_id: c for c in clients_with_access(request.user.pk)}
    if application_id not in held:
        raise Http404("no such client")
    revoke_client_access(user_id=request.user.pk, application_id=application_id)
    request.session["account_notice"] = f"{held[application_id].name} no longer has access."
    return HttpResponseRedirect(reverse("account"))


@require_POST
@members_only
def end_session(request: HttpRequest, session_id: int) -> HttpResponse:
    session = live_sessions_of(request.user.pk).filter(pk=session_id).first()
    if session is None:
        raise Http404("no such session")
    end_sessions(sessions=[session])
    if session.session_key == request.session.session_key:  # this browser's own: it is signed out now
        return HttpResponseRedirect(reverse("login"))
    request.session["account_notice"] = "The session was signed out."
    return HttpResponseRedirect(reverse("account"))
