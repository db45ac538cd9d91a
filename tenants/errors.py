"""The error of the tenants services and selectors, importable by both."""

from __future__ import annotations


class TenantServiceError(Exception):
    """A refused provisioning request; ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
