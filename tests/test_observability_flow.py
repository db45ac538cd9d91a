"""Metrics and audit of one full flow over the live server (registration, login, code
exchange, a tool call, a 403 step-up challenge, a refresh, a reuse detection, a stale membership),
then its metrics at /metrics and its audit events in the tenant's schema. Secrets appear in neither."""

from __future__ import annotations

from django_tenants.utils import schema_context

from accounts.models import User
from observability.models import AuthEvent
from tenants.models import Membership
from tenants.services import add_user
from tests.conftest import PASSWORD
from tests.mcp_raw import call
from tests.oauth_flow import Browser, obtain_tokens, refresh, register
from tests.observability_helpers import samples, scrape, value


def test_one_flow_is_counted_and_audited(live, unique):
    acme = live.tenant("acme")
    email = f"flow-{unique}@acme.test"
    add_user(slug="acme", email=email, password=PASSWORD, role="member")
    before = samples(scrape(live.url))

    client = register(acme)  # registration
    browser = Browser(acme, email)
    browser.login()  # login
    first = obtain_tokens(browser, client, scope="crm.read")  # code exchange
    ok = call(acme.mcp, first["access_token"], "crm_search_contacts", {"query": "a"})  # a tool call
    assert ok.status_code == 200 and ok.json()["result"]["isError"] is False, ok.text
    denied = call(acme.mcp, first["access_token"], "crm_create_note", {"contact_id": 1, "body": "x"})
    assert denied.status_code == 403, denied.text  # a 403 step-up challenge
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]

    second = obtain_tokens(browser, client, scope="crm.read")  # a family not challenged for step-up
    rotated = refresh(client, second["refresh_token"])  # a refresh
    assert rotated.status_code == 200, rotated.text
    again = refresh(client, rotated.json()["refresh_token"])  # the successor is used ...
    assert again.status_code == 200, again.text
    reused = refresh(client, second["refresh_token"])  # ... so the first token again is reuse
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant", reused.text
    dead = call(acme.mcp, again.json()["access_token"], "crm_search_contacts", {})  # the family is revoked
    assert dead.status_code == 401, dead.text

    third = obtain_tokens(browser, client, scope="crm.read")
    user = User.objects.get(email=email)
    Membership.objects.filter(user=user, tenant__schema_name="acme").update(is_active=False)  # stale membership
    stale = call(acme.mcp, third["access_token"], "crm_search_contacts", {})
    assert stale.status_code == 403 and "TENANT_MISMATCH" in stale.text, stale.text

    text = scrape(live.url)
    after = samples(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("platform_oauth_tokens_issued_total", tenant="acme", grant_type="authorization_code",
                 outcome="issued") == 3
    assert delta("platform_oauth_tokens_issued_total", tenant="acme", grant_type="refresh_token",
                 outcome="issued") == 2
    assert delta("platform_oauth_tokens_issued_total", tenant="acme", grant_type="refresh_token",
                 outcome="invalid_grant") == 1
    assert delta("platform_oauth_refresh_total", tenant="acme", outcome="rotated") == 2
    assert delta("platform_oauth_refresh_total", tenant="acme", outcome="reuse") == 1
    assert delta("platform_oauth_reuse_detected_total", tenant="acme", reason="refresh_token") == 1
    assert delta("platform_oauth_revocations_total", tenant="acme", reason="refresh_token") == 1
    assert delta("platform_tool_calls_total", tenant="acme", tool="crm_search_contacts", outcome="ok") == 1
    assert delta("platform_tool_calls_total", tenant="acme", tool="crm_create_note", outcome="denied") == 1
    assert delta("platform_auth_challenges_total", tenant="acme", **{"class": "INSUFFICIENT_SCOPE"},
                 channel="http") == 1
    assert delta("platform_auth_challenges_total", tenant="acme", **{"class": "INVALID_TOKEN"}, channel="http") >= 1
    assert delta("platform_auth_challenges_total", tenant="acme", **{"class": "TENANT_MISMATCH"}, channel="http") == 1
    assert delta("platform_cross_tenant_denials_total", tenant="acme", reason="not_a_member") == 1

    with schema_context("acme"):
        events = list(AuthEvent.objects.filter(client_id=client.client_id).order_by("id"))
        assert all(e.tenant == "acme" for e in events)
        kinds = [(e.event, e.auth_class, e.outcome) for e in events]
        assert kinds.count(("token.authorization_code", "", "issued")) == 3, kinds
        assert kinds.count(("token.refresh_token", "", "issued")) == 2, kinds
        assert ("token.refresh_token", "", "invalid_grant") in kinds, kinds
        assert ("refresh_reuse", "", "family_revoked") in kinds, kinds
        assert ("challenge", "INSUFFICIENT_SCOPE", "http") in kinds, kinds
        assert ("challenge", "TENANT_MISMATCH", "http") in kinds, kinds
        assert not any(e.event == "tool_call" for e in events), "successful calls are metrics-only by default"
        challenge = next(e for e in events if e.auth_class == "INSUFFICIENT_SCOPE")
        assert challenge.user_id == user.pk and challenge.tool == "crm_create_note"
        assert challenge.source_address == "127.0.0.1" and len(challenge.request_id) == 32
        issued = next(e for e in events if e.event == "token.authorization_code")
        assert issued.user_id == user.pk and issued.source_address == "127.0.0.1"
        reuse = next(e for e in events if e.event == "refresh_reuse")
        assert reuse.user_id == user.pk
        stored = " ".join(
            str(v) for e in events for v in (e.event, e.auth_class, e.outcome, e.client_id, e.tool, e.request_id)
        )

    secrets = [first["access_token"], first["refresh_token"], second["refresh_token"], third["access_token"]]
    if client.client_secret:
        secrets.append(client.client_secret)
    for secret in secrets:
        assert secret not in text and secret not in stored
    assert client.client_id not in text and email not in text and str(user.pk) not in _label_values(text)


def _label_values(text: str) -> set[str]:
    """The platform's own metrics' label values (the client library's ``python_info`` carries the
    interpreter's version numbers, which a small user id can equal)."""
    return {v for (name, labels) in samples(text) if name.startswith("platform_") for _, v in labels}
