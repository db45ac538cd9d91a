"""Client secrets are stored under the fast client-secret hasher (oauth.hashers), verify over HTTP at the
token endpoint, survive a re-save, and a secret stored under another hasher still verifies and is
rehashed at its next use."""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django_tenants.utils import schema_context
from oauth2_provider.models import Application

from oauth.checks import client_secret_hasher
from tests.oauth_flow import Client, authorization_code, exchange, register, signed_in_browser

PREFIX = "client_secret_sha256$1$"


def _stored(client_id: str) -> str:
    with schema_context("acme"):
        return Application.objects.get(client_id=client_id).client_secret


def _set_stored(client_id: str, value: str) -> None:
    with schema_context("acme"):
        Application.objects.filter(client_id=client_id).update(client_secret=value)


def _exchanges(client: Client, browser) -> int:
    code, verifier = authorization_code(browser, client)
    return exchange(client, code, verifier).status_code


def test_confidential_client_secret_is_hashed_fast_and_verifies(acme):
    client = register(acme, token_endpoint_auth_method="client_secret_basic")
    stored = _stored(client.client_id)
    assert stored.startswith(PREFIX) and client.client_secret not in stored
    browser = signed_in_browser(acme, "member@acme.test")
    assert _exchanges(client, browser) == 200
    wrong = Client(acme, client.client_id, client.client_secret[:-1] + "x")
    assert _exchanges(wrong, browser) == 401

    with schema_context("acme"):  # a re-save (admin edit, RFC 7592 update) leaves the hash alone
        Application.objects.get(client_id=client.client_id).save()
    assert _stored(client.client_id) == stored
    assert _exchanges(client, browser) == 200


def test_secret_under_another_hasher_verifies_and_is_rehashed(acme):
    client = register(acme, token_endpoint_auth_method="client_secret_post")
    legacy = make_password(client.client_secret, hasher="md5")  # the suite's stand-in for PBKDF2
    _set_stored(client.client_id, legacy)
    browser = signed_in_browser(acme, "member@acme.test")
    wrong = Client(acme, client.client_id, "x" * 64)
    assert _exchanges(wrong, browser) == 401
    assert _stored(client.client_id) == legacy  # a failed check rewrites nothing
    assert _exchanges(client, browser) == 200
    upgraded = _stored(client.client_id)
    assert upgraded.startswith(PREFIX)
    assert _exchanges(client, browser) == 200
    assert _stored(client.client_id) == upgraded  # rehashed once


def test_short_typed_secret_keeps_the_password_hasher(acme):
    client = register(acme, token_endpoint_auth_method="client_secret_basic")
    typed = "hunter2-typed"
    with schema_context("acme"):
        app = Application.objects.get(client_id=client.client_id)
        app.client_secret = typed
        app.save()
    stored = _stored(client.client_id)
    assert stored.startswith("md5$")  # the default (first) password hasher, here the suite's
    browser = signed_in_browser(acme, "member@acme.test")
    assert _exchanges(Client(acme, client.client_id, typed), browser) == 200
    assert _stored(client.client_id) == stored  # not rewritten on every use


def test_system_check_wants_the_hasher_registered_and_not_first(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert [e.id for e in client_secret_hasher(None)] == ["platform_oauth.E001"]
    settings.PASSWORD_HASHERS = ["oauth.hashers.ClientSecretHasher", "django.contrib.auth.hashers.MD5PasswordHasher"]
    assert [e.id for e in client_secret_hasher(None)] == ["platform_oauth.E002"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "oauth.hashers.ClientSecretHasher"]
    assert client_secret_hasher(None) == []
