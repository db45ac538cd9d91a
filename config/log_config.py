"""The logging configuration. ``LOG_LEVEL`` sets the root level; the loggers below are pinned whatever
it says, because at DEBUG (some at INFO) they write request bodies, headers, URLs with codes or SQL
parameters: oauthlib logs token requests and refresh tokens, httpcore logs response headers
(``Location: ...?code=``, ``Set-Cookie``), the database backend logs query parameters. No setting may
put a token, code, secret, PKCE verifier or password in a log (tests/test_production_defaults.py).
"""

from __future__ import annotations

PINNED_LOGGERS = {
    "oauthlib": "WARNING",
    "oauth2_provider": "INFO",  # INFO names public client_ids only (CIMD); DEBUG shows request data
    "django.db.backends": "WARNING",
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "urllib3": "WARNING",
    "httpx2": "WARNING",  # authlib's client (enterprise identity) and the mcp package run on httpx2
    "httpcore2": "WARNING",
    "authlib": "WARNING",
    "mcp": "INFO",
}


def logging_config(level: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {name: {"level": pinned} for name, pinned in PINNED_LOGGERS.items()},
    }
