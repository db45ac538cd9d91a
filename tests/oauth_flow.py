"""The probe client (``probe.oauth_flow``) with the test suite's user password as the default."""

from __future__ import annotations

from dataclasses import dataclass

from probe.oauth_flow import (  # noqa: F401  (re-exported for the tests)
    REDIRECT_URI,
    Client,
    Tenant,
    authorization_code,
    authorize_url,
    exchange,
    hidden_inputs,
    obtain_tokens,
    pkce_pair,
    query_params,
    redirect_params,
    refresh,
    register,
    submit_login,
)
from probe.oauth_flow import Browser as ProbeBrowser
from tests.conftest import PASSWORD


@dataclass
class Browser(ProbeBrowser):
    password: str = PASSWORD


def signed_in_browser(tenant: Tenant, email: str) -> Browser:
    """A browser signed in to ``tenant`` as ``email``."""
    browser = Browser(tenant, email)
    browser.login()
    return browser


def signed_in(tenant: Tenant, email: str, **metadata) -> tuple[Client, Browser]:
    """A freshly registered client and a browser signed in as ``email``."""
    return register(tenant, **metadata), signed_in_browser(tenant, email)
