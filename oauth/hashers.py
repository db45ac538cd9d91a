"""The hasher for client secrets (DOT's ``CLIENT_SECRET_HASHER``; listed in ``PASSWORD_HASHERS`` after
the password hashers, so Django identifies it, and never first, so no user password gets it).

DOT hashes client secrets with the first password hasher by default: PBKDF2 with 1,000,000
iterations, about 0.3 s of CPU on every token request of a confidential client (and every
introspection call of a resource server). A key-stretching KDF protects guessable passwords; a client
secret is not one. DOT generates 128 random characters (over 700 bits), so one salted HMAC-SHA256
(PBKDF2 with a single iteration, Django's own code) is as hard to invert as a million of them.

A secret someone typed (the admin allows it) may be guessable: anything shorter than
``MIN_RANDOM_LENGTH`` characters keeps the default password hasher. Secrets stored under another
hasher still verify, and are rehashed with this one at their next successful use
(``oauth.validators``, ``oauth.services.rehash_client_secret``)."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher

MIN_RANDOM_LENGTH = 32


class ClientSecretHasher(PBKDF2PasswordHasher):
    algorithm = "client_secret_sha256"
    iterations = 1

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        if len(password) < MIN_RANDOM_LENGTH:  # typed, maybe guessable: stretch it like a password
            return get_hasher("default").encode(password, salt)
        return super().encode(password, salt, iterations)

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass  # one iteration is the work factor; there is nothing to even out
