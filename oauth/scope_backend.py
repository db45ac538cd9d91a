"""DOT's ``SCOPES_BACKEND_CLASS``: the scopes the apps declared (``declarations.scopes``), instead of
a static ``SCOPES`` setting, so a new app's scopes reach the authorization server without settings
importing the app."""

from __future__ import annotations

from oauth2_provider.scopes import BaseScopes

from declarations.scopes import all_scopes, base_scopes


class DeclaredScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return {name: scope.description for name, scope in all_scopes().items()}

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return list(all_scopes())

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return list(base_scopes())
