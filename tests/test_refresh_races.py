"""Parallel refreshes of one refresh token over real HTTP: agents run tool calls in
parallel and several of them refresh the same expired token at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import refresh_grace_seconds
from tests.mcp_raw import call
from tests.oauth_flow import obtain_tokens, refresh, signed_in

PARALLEL = 10
ROUNDS = 20


def _live_families(client_id: str) -> list:
    from django_tenants.utils import schema_context
    from oauth2_provider.models import RefreshToken

    with schema_context("acme"):
        return list(
            RefreshToken.objects.filter(application__client_id=client_id, revoked__isnull=True).values_list(
                "token_family", flat=True
            )
        )


def test_parallel_refreshes_of_one_token_all_get_the_same_pair(acme):
    client, browser = signed_in(acme, "member@acme.test")
    tokens = obtain_tokens(browser, client)
    family = _live_families(client.client_id)
    with ThreadPoolExecutor(PARALLEL) as pool:
        for round_ in range(ROUNDS):
            presented = tokens["refresh_token"]
            answers = list(pool.map(refresh, [client] * PARALLEL, [presented] * PARALLEL))
            statuses = [a.status_code for a in answers]
            assert statuses == [200] * PARALLEL, (round_, statuses, [a.text[:200] for a in answers])
            pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
            assert len(pairs) == 1, (round_, len(pairs))
            access, refreshed = pairs.pop()
            assert access and refreshed and refreshed != presented
            # exactly one live token, in the family the session started with
            assert _live_families(client.client_id) == family, round_
            # the pair works at the MCP endpoint
            result = call(acme.mcp, access, "crm_search_contacts", {"query": "Grace"})
            assert result.status_code == 200 and not result.json()["result"]["isError"], result.text[:300]
            tokens = {"refresh_token": refreshed}


def test_after_the_grace_window_reuse_revokes_the_family(acme):
    client, browser = signed_in(acme, "member@acme.test")
    first = obtain_tokens(browser, client)
    second = refresh(client, first["refresh_token"]).json()
    with refresh_grace_seconds(0):
        late = refresh(client, first["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert _live_families(client.client_id) == []
    assert refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert call(acme.mcp, second["access_token"], "crm_search_contacts", {"query": "Grace"}).status_code == 401


def test_a_pair_revoked_before_its_response_is_sent_is_invalid_grant_not_500(acme):
    """DOT's token view reads the issued access token again after committing; if a concurrent request
    deleted it in between, the answer is invalid_grant (was: AccessToken.DoesNotExist, a 500)."""
    from django.db.models.signals import post_save
    from oauth2_provider.models import RefreshToken

    client, browser = signed_in(acme, "member@acme.test")
    first = obtain_tokens(browser, client)

    def revoke_on_commit(sender, instance, created, **kwargs):
        if created and instance.application.client_id == client.client_id:
            from django.db import transaction

            family = instance.token_family
            transaction.on_commit(lambda: RefreshToken.revoke_family(family))

    post_save.connect(revoke_on_commit, sender=RefreshToken)
    try:
        answer = refresh(client, first["refresh_token"])
    finally:
        post_save.disconnect(revoke_on_commit, sender=RefreshToken)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text[:300]
    assert _live_families(client.client_id) == []
