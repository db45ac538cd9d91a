"""Stable error codes of the connectors app. Messages are for people and never carry a secret."""

from __future__ import annotations


class ConnectorError(Exception):
    """A refused or failed connectors operation; ``code`` is stable."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


class ReauthRequired(ConnectorError):
    """The user must (re)connect the account: missing, revoked or ``needs_reauth``."""


class ProviderUnavailable(ConnectorError):
    """A transient failure at the provider (timeout, 5xx, 429) that outlasted the retries."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, message, transient=True)
        self.retry_after = retry_after
