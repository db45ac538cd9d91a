"""The error of the identity services, importable by views, commands and the SCIM layer."""

from __future__ import annotations


class IdentityError(Exception):
    """A refused request; ``code`` is stable (commands print it in brackets, the sign-in error page
    shows it), the message is for people and never holds a token, code or secret."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
