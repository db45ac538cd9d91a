"""The effective django-oauth-toolkit settings the README ("RFC 9700 and token lifecycle") promises.
Some are DOT's defaults and not written in config/settings.py: this test keeps a DOT upgrade or an
edited setting from changing them silently."""

from __future__ import annotations

from oauth2_provider.settings import oauth2_settings

RFC9700_GATES = (
    "PKCE_METHOD",
    "PKCE_REQUIRED",
    "IMPLICIT_GRANT",
    "PASSWORD_GRANT",
    "ACCESS_TOKEN_TRANSPORT",
    "AUTHZ_RESPONSE_ISS",
    "TOKEN_STORAGE",
    "REFRESH_TOKEN",
    "REDIRECT_URI_SCHEME",
    "REDIRECT_URI_MATCHING",
)


def test_every_rfc9700_gate_is_on():
    off = [gate for gate in RFC9700_GATES if getattr(oauth2_settings, f"COMPLIANT_BCP_RFC9700_{gate}") is not True]
    assert off == []


def test_the_dot_defaults_the_platform_relies_on():
    effective = {
        "PKCE_REQUIRED": oauth2_settings.PKCE_REQUIRED,
        "ROTATE_REFRESH_TOKEN": oauth2_settings.ROTATE_REFRESH_TOKEN,
        "REFRESH_TOKEN_REUSE_PROTECTION": oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION,
        "ALLOW_URI_WILDCARDS": oauth2_settings.ALLOW_URI_WILDCARDS,
        "REQUEST_APPROVAL_PROMPT": oauth2_settings.REQUEST_APPROVAL_PROMPT,
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS,
        "OIDC_ENABLED": oauth2_settings.OIDC_ENABLED,
        "ALLOWED_REDIRECT_URI_SCHEMES": sorted(oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES),
        "DCR_ENABLED": oauth2_settings.DCR_ENABLED,
        "CIMD_ENABLED": oauth2_settings.CIMD_ENABLED,
    }
    assert effective == {
        "PKCE_REQUIRED": True,
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "ALLOW_URI_WILDCARDS": False,
        "REQUEST_APPROVAL_PROMPT": "force",  # the platform's own consent memory decides (oauth.views.authorize)
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
        "OIDC_ENABLED": False,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],  # http only on loopback: oauth.client_policy
        "DCR_ENABLED": True,
        "CIMD_ENABLED": True,
    }


def test_dot_uses_its_own_models():
    models = (
        oauth2_settings.APPLICATION_MODEL,
        oauth2_settings.ACCESS_TOKEN_MODEL,
        oauth2_settings.REFRESH_TOKEN_MODEL,
        oauth2_settings.GRANT_MODEL,
        oauth2_settings.ID_TOKEN_MODEL,
    )
    assert models == (
        "oauth2_provider.Application",
        "oauth2_provider.AccessToken",
        "oauth2_provider.RefreshToken",
        "oauth2_provider.Grant",
        "oauth2_provider.IDToken",
    )
