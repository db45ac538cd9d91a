"""``rotate_credentials_key``: re-encrypt every tenant's connector secrets under the newest key;
resumable; after removing the old key everything still decrypts."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context
from fernet_fields import hkdf

from connectors.crypto import reencrypt_current_schema
from connectors.models import ConnectedAccount, Credential, Provider
from connectors.services import add_provider

NEW_KEY = "a-new-test-only-fernet-key-material"  # test-only


def raw_values(slug: str, key: str = "rot") -> list[bytes]:
    """The stored ciphertexts of provider ``key`` and its credentials (other tests' rows exist too)."""
    with schema_context(slug), connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.client_secret, c.access_token, c.refresh_token FROM connectors_provider p "
            "JOIN connectors_connectedaccount a ON a.provider_id = p.id "
            "JOIN connectors_credential c ON c.account_id = a.id WHERE p.key = %s",
            [key],
        )
        return [bytes(value) for row in cursor.fetchall() for value in row if value is not None]


def opens_with(key: str, value: bytes) -> bool:
    try:
        Fernet(hkdf.derive_fernet_key(key)).decrypt(value)
        return True
    except InvalidToken:
        return False


@pytest.mark.django_db
def test_rotation_reencrypts_all_tenants_and_survives_removing_the_old_key(django_user_model):
    old_keys = list(settings.FERNET_KEYS)
    user = django_user_model.objects.get(email="member@acme.test")
    for slug in ("acme", "globex"):
        with schema_context(slug):
            provider, _ = add_provider(key="rot", preset_name="google", client_id="id", client_secret=f"secret-{slug}")
            account = ConnectedAccount.objects.create(user=user, provider=provider)
            Credential.objects.create(account=account, access_token=f"at-{slug}", refresh_token=f"rt-{slug}")
    before = raw_values("acme") + raw_values("globex")
    assert len(before) == 6 and all(opens_with(old_keys[0], v) and not opens_with(NEW_KEY, v) for v in before)

    with override_settings(FERNET_KEYS=[NEW_KEY, *old_keys]):
        out = StringIO()
        call_command("rotate_credentials_key", stdout=out)
        assert "globex: 3 re-encrypted, 0 already current" in out.getvalue()  # acme holds other tests' rows too
        after = raw_values("acme") + raw_values("globex")
        assert all(opens_with(NEW_KEY, v) for v in after)
        again = StringIO()
        call_command("rotate_credentials_key", stdout=again)  # resumable: done rows are skipped
        assert (
            "total: 0 re-encrypted" in again.getvalue()
            and "globex: 0 re-encrypted, 3 already current" in again.getvalue()
        )

    with override_settings(FERNET_KEYS=[NEW_KEY]):  # the old key is gone
        for slug in ("acme", "globex"):
            with schema_context(slug):
                credential = Credential.objects.get(account__provider__key="rot")
                assert (credential.access_token, credential.refresh_token) == (f"at-{slug}", f"rt-{slug}")
                assert Provider.objects.get(key="rot").client_secret == f"secret-{slug}"


@pytest.mark.django_db
def test_an_interrupted_rotation_resumes_where_it_stopped(django_user_model):
    user = django_user_model.objects.get(email="member@acme.test")
    with schema_context("acme"):
        provider, _ = add_provider(key="rot2", preset_name="google", client_id="id", client_secret="s")
        for index in range(5):
            other = django_user_model.objects.create_user(email=f"rot{index}@acme.test", password="x" * 12)
            account = ConnectedAccount.objects.create(user=other if index else user, provider=provider)
            Credential.objects.create(account=account, access_token=f"at{index}", refresh_token=None)
        with override_settings(FERNET_KEYS=[NEW_KEY, *settings.FERNET_KEYS]):
            # "interrupt" after the first batch: rotate only rows up to the second credential by hand
            first_two = list(Credential.objects.order_by("id").values_list("id", flat=True)[:2])
            for credential in Credential.objects.filter(id__in=first_two):
                credential.save()  # a save writes with the newest key, as a finished batch did
            report = reencrypt_current_schema(batch_size=2)
        assert report.already_current >= 2 and report.rotated >= 3  # the two done rows were skipped
        assert report.rotated == report.examined - report.already_current
        assert all(opens_with(NEW_KEY, value) for value in raw_values("acme", "rot2"))
        with override_settings(FERNET_KEYS=[NEW_KEY]):
            mine = Credential.objects.filter(account__provider=provider).values_list("access_token", flat=True)
            assert sorted(mine) == [f"at{i}" for i in range(5)]
