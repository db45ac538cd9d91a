"""Sign-in through the tenant's own identity provider over plain HTTP: the npm ``oidc-provider``
(tests/node_oidc/idp.mjs) as the IdP, the platform as its relying party on the live server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django_tenants.utils import schema_context

from accounts.models import User
from identity.models import IdentityLink, SignInSession
from observability.models import AuthEvent
from tenants.models import Membership
from tests.conftest import PASSWORD
from tests.identity.conftest import add_idp, new_account
from tests.oauth_flow import (
    Browser,
    authorize_url,
    exchange,
    hidden_inputs,
    pkce_pair,
    query_params,
    redirect_params,
    register,
)

DOMAIN = "idp.example"


def membership(email: str, slug: str) -> Membership | None:
    return Membership.objects.filter(user__email=email, tenant__schema_name=slug).first()


def error_code(response) -> str:
    marker = 'id="error-code">'
    assert marker in response.text, response.text[:500]
    return response.text.split(marker, 1)[1].split("<", 1)[0]


def test_first_sign_in_with_jit_creates_the_member_and_the_next_uses_the_link(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    account = new_account()
    idp.accounts(**{account: {"name": "Ada Lovelace"}})
    email = f"{account}@{DOMAIN}"

    response = browser("sso_a", account).sign_in(key)

    assert response.status_code == 302 and response.headers["location"] == "/t/sso_a/account/"
    user = User.objects.get(email=email)
    assert user.full_name == "Ada Lovelace" and not user.has_usable_password()
    assert membership(email, "sso_a").role == "member" and membership(email, "sso_a").is_active
    assert membership(email, "sso_b") is None
    with schema_context("sso_a"):
        link = IdentityLink.objects.get(provider__key=key, subject=account)
        assert link.user_id == user.pk
        assert SignInSession.objects.filter(user_id=user.pk, method="sso", provider__key=key).count() == 1
        assert AuthEvent.objects.filter(event="sso_sign_in", outcome="jit", user_id=user.pk).exists()

    second = browser("sso_a", account)
    assert second.sign_in(key).status_code == 302 and second.signed_in()
    with schema_context("sso_a"):
        assert AuthEvent.objects.filter(event="sso_sign_in", outcome="link", user_id=user.pk).exists()
    assert User.objects.filter(email=email).count() == 1


def test_without_jit_an_unknown_account_is_refused_and_nothing_is_created(live, idp, browser):
    key = add_idp(idp, "sso_a", email_domains=[DOMAIN])  # jit_role defaults to none
    account = new_account()
    response = browser("sso_a", account).sign_in(key)
    assert response.status_code == 403 and error_code(response) == "no_account"
    assert not User.objects.filter(email=f"{account}@{DOMAIN}").exists()


def test_jit_needs_a_listed_domain_and_a_verified_email(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=["other.example"])
    account = new_account()
    assert error_code(browser("sso_a", account).sign_in(key)) == "domain_not_allowed"

    listed = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    unverified = new_account()
    idp.accounts(**{unverified: {"email_verified": False}})
    assert error_code(browser("sso_a", unverified).sign_in(listed)) == "domain_not_allowed"
    assert not User.objects.filter(email__in=[f"{account}@{DOMAIN}", f"{unverified}@{DOMAIN}"]).exists()


def test_jit_never_takes_over_an_existing_platform_user(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="admin", email_domains=[DOMAIN])
    account = new_account()
    email = f"{account}@{DOMAIN}"
    User.objects.create_user(email=email, password=PASSWORD)  # a platform user, member of nothing here
    response = browser("sso_a", account).sign_in(key)
    assert response.status_code == 403 and error_code(response) == "account_exists"
    assert membership(email, "sso_a") is None


def test_link_by_email_links_an_existing_member_only_with_a_verified_email(live, idp, browser):
    from tenants.services import add_user

    key = add_idp(idp, "sso_a", email_domains=[DOMAIN], link_by_email=True)
    account = new_account()
    email = f"{account}@{DOMAIN}"
    add_user(slug="sso_a", email=email, password=PASSWORD, role="member")

    idp.accounts(**{account: {"email_verified": False}})
    assert error_code(browser("sso_a", account).sign_in(key)) == "no_account"
    idp.accounts(**{account: {"email_verified": True}})
    signed = browser("sso_a", account)
    assert signed.sign_in(key).status_code == 302 and signed.signed_in()
    with schema_context("sso_a"):
        assert IdentityLink.objects.get(provider__key=key, subject=account).user_id == User.objects.get(email=email).pk

    # by email, never for a platform user who is not a member here
    stranger = new_account()
    User.objects.create_user(email=f"{stranger}@{DOMAIN}", password=PASSWORD)
    assert error_code(browser("sso_a", stranger).sign_in(key)) == "not_a_member"


def test_the_role_follows_the_claim_on_every_sign_in(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN], role_claim="groups", admin_value="it-admins")
    account = new_account()
    email = f"{account}@{DOMAIN}"
    idp.accounts(**{account: {"groups": ["staff", "it-admins"]}})
    assert browser("sso_a", account).sign_in(key).status_code == 302
    assert membership(email, "sso_a").role == "admin"  # JIT with the claim's role

    idp.accounts(**{account: {"groups": ["staff"]}})
    assert browser("sso_a", account).sign_in(key).status_code == 302
    assert membership(email, "sso_a").role == "member"  # demoted

    idp.accounts(**{account: {"groups": "it-admins"}})  # a single string works too
    assert browser("sso_a", account).sign_in(key).status_code == 302
    assert membership(email, "sso_a").role == "admin"  # promoted


def test_an_ended_membership_is_not_brought_back_by_a_sign_in(live, idp, browser):
    from tenants.services import remove_user

    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    account = new_account()
    assert browser("sso_a", account).sign_in(key).status_code == 302
    remove_user(slug="sso_a", email=f"{account}@{DOMAIN}")
    assert error_code(browser("sso_a", account).sign_in(key)) == "not_a_member"
    assert not membership(f"{account}@{DOMAIN}", "sso_a").is_active


def test_a_replayed_callback_is_refused(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    person = browser("sso_a", new_account())
    callback = person.to_callback(key)
    assert person.http.get(callback).status_code == 302
    replay = person.http.get(callback)
    assert replay.status_code == 400 and error_code(replay) == "invalid_state"


def test_a_callback_in_another_browser_is_refused(live, idp, browser):
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    account = new_account()
    callback = browser("sso_a", account).to_callback(key)
    attacker = browser("sso_a")  # the state is bound to the browser session that started the sign-in
    assert error_code(attacker.http.get(callback)) == "invalid_state"
    assert not User.objects.filter(email=f"{account}@{DOMAIN}").exists()


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_an_answer_naming_another_issuer_is_refused(live, idp, browser):
    """RFC 9207: the authorization response's ``iss`` must be the provider the sign-in went to."""
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    person = browser("sso_a", new_account())
    callback = person.to_callback(key)
    assert query_params(callback)["iss"] == idp.issuer
    forged = person.http.get(_with_query(callback, iss="https://evil.example"))
    assert forged.status_code == 400 and error_code(forged) == "issuer_mismatch"
    # and the transaction is spent: the genuine answer cannot be used after the forged one
    assert error_code(person.http.get(callback)) == "invalid_state"


def test_an_id_token_from_another_issuer_than_the_record_is_refused(live, idp, browser):
    """The provider record names the issuer the ID token must carry; one that differs is refused,
    although the IdP itself answered (its ``iss`` parameter is checked against the same record)."""
    from identity.models import IdentityProvider

    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    with schema_context("sso_a"):
        provider = IdentityProvider.objects.get(key=key)
        provider.metadata = {**provider.metadata, "issuer": idp.issuer + "/other"}
        provider.save(update_fields=["metadata"])
    response = browser("sso_a", new_account()).sign_in(key)
    assert response.status_code == 400 and error_code(response) == "id_token_invalid"


def test_an_id_token_with_another_nonce_is_refused(live, idp, browser):
    """The nonce bound to the browser session when the sign-in started must be the ID token's."""
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    account = new_account()
    person = browser("sso_a", account)
    callback = person.to_callback(key)
    state = query_params(callback)["state"]
    session_key = person.http.cookies.get("sessionid_sso_a")
    with schema_context("sso_a"):
        session = SessionStore(session_key)
        stored = session[f"_state_sso_{state}"]
        stored["data"]["nonce"] = "not-the-nonce-the-id-token-carries"
        session[f"_state_sso_{state}"] = stored
        session.save()
    response = person.http.get(callback)
    assert response.status_code == 400 and error_code(response) == "id_token_invalid"
    assert not User.objects.filter(email=f"{account}@{DOMAIN}").exists()


def test_a_sign_in_through_another_tenants_provider_grants_nothing_here(live, idp, browser):
    """The same IdP (same issuer) is trusted by both tenants; B lets its accounts in just in time, A
    does not. An account that signed in at B is neither a member of A nor linked there."""
    at_b = add_idp(idp, "sso_b", jit_role="member", email_domains=[DOMAIN])
    at_a = add_idp(idp, "sso_a", email_domains=[DOMAIN])
    account = new_account()
    person = browser("sso_b", account)
    assert person.sign_in(at_b).status_code == 302
    email = f"{account}@{DOMAIN}"
    assert membership(email, "sso_b").is_active and membership(email, "sso_a") is None

    at_a_browser = browser("sso_a", account)
    at_a_browser.http.cookies.update(person.http.cookies)  # the same browser: B's session cookie too
    assert error_code(at_a_browser.sign_in(at_a)) == "no_account"
    assert not at_a_browser.signed_in()
    with schema_context("sso_a"):
        assert not IdentityLink.objects.filter(subject=account).exists()
    # and B's provider cannot be used from A's pages at all
    assert at_a_browser.start(at_b).status_code == 404


def test_the_consent_page_works_after_an_sso_sign_in(live, idp, browser):
    """An MCP client's authorization: the login page, "Sign in with ...", back to the consent page,
    Allow, a code for the client, tokens."""
    key = add_idp(idp, "sso_a", jit_role="member", email_domains=[DOMAIN])
    client = register(live.tenant("sso_a"), client_name="SSO consent client")
    verifier, challenge = pkce_pair()
    authorize = authorize_url(client, scope="crm.read", challenge=challenge, state="sso-state")
    person = browser("sso_a", new_account())
    first = person.http.get(authorize)
    assert first.status_code == 302 and "/t/sso_a/login/" in first.headers["location"]
    next_url = query_params(first.headers["location"])["next"]

    signed_in = person.sign_in(key, next_url=next_url)
    assert signed_in.status_code == 302 and signed_in.headers["location"] == next_url
    consent = person.http.get(authorize)
    assert consent.status_code == 200 and 'id="authorizationForm"' in consent.text
    form = hidden_inputs(consent.text)
    form["allow"] = "Authorize"
    params = redirect_params(person.http.post(authorize.split("?")[0], data=form))
    assert params["state"] == "sso-state"
    tokens = exchange(client, params["code"], verifier)
    assert tokens.status_code == 200 and tokens.json()["scope"] == "crm.read"


def test_sso_required_refuses_member_passwords_and_audits_admin_break_glass(live, idp):
    from django.core.management import call_command

    from identity.services import set_sso_required

    call_command("tenant_sso_required", "sso_b", "on", stdout=open("/dev/null", "w"))  # noqa: SIM115
    try:
        page = Browser(live.tenant("sso_b"), "member@sso-b.test", PASSWORD).http.get(live.tenant_url("sso_b", "login/"))
        assert 'id="sso-required"' in page.text
        member = Browser(live.tenant("sso_b"), "member@sso-b.test", PASSWORD)
        with pytest.raises(AssertionError):
            member.login()  # the one generic error, as for a wrong password
        admin = Browser(live.tenant("sso_b"), "admin@sso-b.test", PASSWORD)
        admin.login()
        admin_id = User.objects.get(email="admin@sso-b.test").pk
        with schema_context("sso_b"):
            assert AuthEvent.objects.filter(event="break_glass_login", user_id=admin_id).exists()
    finally:
        with schema_context("sso_b"):
            set_sso_required(required=False)
    Browser(live.tenant("sso_b"), "member@sso-b.test", PASSWORD).login()  # off again: passwords work
