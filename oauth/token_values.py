"""Access and refresh token values (DOT's ``ACCESS_TOKEN_GENERATOR``; refresh tokens use the same).

oauthlib's default draws 30 characters from ``[A-Za-z0-9]``, one ``SystemRandom.choice`` (a system
call for fresh randomness) per character: 179 bits for 30 system calls, 60 per token response. This
reads 256 bits from the operating system's CSPRNG once and encodes them URL-safe (43 characters of
``[A-Za-z0-9_-]``, valid in a Bearer header and a form body)."""

from __future__ import annotations

import secrets


def random_token(request, refresh_token: bool = False) -> str:
    return secrets.token_urlsafe(32)
