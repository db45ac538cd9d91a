"""Step-up for clients that refresh instead of re-authorizing (TS SDK 1.x,
modelcontextprotocol/typescript-sdk#2255), over real HTTP against the live server."""

from __future__ import annotations

from tests.mcp_raw import call
from tests.oauth_flow import Tenant, obtain_tokens, refresh, signed_in

NOTE = {"contact_id": 1, "body": "step-up"}


def _challenged(acme: Tenant):
    client, browser = signed_in(acme, "member@acme.test")
    tokens = obtain_tokens(browser, client, scope="crm.read")
    response = call(acme.mcp, tokens["access_token"], "crm_create_note", NOTE)
    assert response.status_code == 403, response.text[:300]
    return client, browser, tokens


def test_refresh_after_insufficient_scope_is_invalid_grant_within_the_window(acme):
    client, _, tokens = _challenged(acme)
    answer = refresh(client, tokens["refresh_token"])  # what TS SDK 1.x does on the 403
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_grant"
    assert "crm.write" in body["error_description"] and "authorize again" in body["error_description"]
    # refused, not revoked: the access token still works for what it was granted
    assert call(acme.mcp, tokens["access_token"], "crm_search_contacts", {"query": "Grace"}).status_code == 200


def test_after_the_window_the_family_refreshes_normally(acme, settings):
    client, _, tokens = _challenged(acme)
    settings.OAUTH_STEP_UP_REFRESH_WINDOW_SECONDS = 0
    answer = refresh(client, tokens["refresh_token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "crm.read"


def test_clients_that_reauthorize_see_no_change(acme):
    client, browser, _ = _challenged(acme)
    upgraded = obtain_tokens(browser, client, scope="crm.read crm.write")
    assert set(upgraded["scope"].split()) == {"crm.read", "crm.write"}
    assert call(acme.mcp, upgraded["access_token"], "crm_create_note", NOTE).status_code == 200
    onward = refresh(client, upgraded["refresh_token"])  # the new family was never challenged
    assert onward.status_code == 200, onward.text


def test_unchallenged_families_and_other_denials_are_not_recorded(acme):
    from django_tenants.utils import schema_context

    from oauth.models import StepUpChallenge

    with schema_context("acme"):
        before = StepUpChallenge.objects.count()
    client, browser = signed_in(acme, "member@acme.test")
    tokens = obtain_tokens(browser, client, scope="crm.read")
    assert call(acme.mcp, tokens["access_token"], "crm_search_contacts", {"query": "Grace"}).status_code == 200
    assert call(acme.mcp, "not-a-token", "crm_create_note", NOTE).status_code == 401
    assert refresh(client, tokens["refresh_token"]).status_code == 200
    with schema_context("acme"):
        assert StepUpChallenge.objects.count() == before
