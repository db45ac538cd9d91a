"""The encrypted columns of the connectors app and their re-encryption under the newest key.

``fernet_fields`` encrypts with the first of ``settings.FERNET_KEYS`` and decrypts with any of them.
Re-encryption reads the raw ciphertext, skips what the newest key already opens (so an interrupted
run resumes where it stopped), rotates the rest and writes it back only if the row still holds the
ciphertext it read (a concurrent refresh wins)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.db import connection, models, transaction
from fernet_fields import EncryptedField

from connectors import statements
from connectors.models import AuthorizationRequest, Credential, Provider, RetiredGrant

ENCRYPTED_MODELS: tuple[type[models.Model], ...] = (Provider, Credential, AuthorizationRequest, RetiredGrant)


def encrypted_fields() -> Iterator[tuple[type[models.Model], EncryptedField]]:
    for model in ENCRYPTED_MODELS:
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedField):
                yield model, field


def reset_field_keys() -> None:
    """Forget the keys cached on each field (after FERNET_KEYS changed, e.g. in tests)."""
    for _, field in encrypted_fields():
        for name in ("keys", "fernet_keys", "fernet"):
            field.__dict__.pop(name, None)


@dataclass
class RotationReport:
    examined: int = 0
    rotated: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0


def reencrypt_current_schema(*, batch_size: int = 200, report: RotationReport | None = None) -> RotationReport:
    """Re-encrypt every encrypted value in the connection's current schema under the newest key."""
    report = report or RotationReport()
    for model, field in encrypted_fields():
        newest = Fernet(field.fernet_keys[0])
        rotate = MultiFernet([Fernet(k) for k in field.fernet_keys])
        batch_sql, swap_sql = statements.ciphertext_batch(model, field), statements.swap_ciphertext(model, field)
        last_id = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(batch_sql, [last_id, batch_size])
                rows = cursor.fetchall()
                for row_id, raw in rows:
                    report.examined += 1
                    token = bytes(raw)
                    try:
                        newest.decrypt(token)
                        report.already_current += 1
                        continue
                    except InvalidToken:
                        pass
                    fresh = rotate.rotate(token)
                    cursor.execute(swap_sql, [fresh, row_id, token])
                    if cursor.rowcount:
                        report.rotated += 1
                    else:
                        report.changed_meanwhile += 1
            if len(rows) < batch_size:
                break
            last_id = rows[-1][0]
    return report
