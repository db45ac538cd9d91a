"""System check: DOT's client-secret hasher must be one Django can identify (listed in
``PASSWORD_HASHERS``), or a saved application would have its stored hash hashed again (DOT's
``ClientSecretField`` rehashes any value it cannot identify) and its secret would stop working; and it
must not be the first entry, which hashes user passwords."""

from __future__ import annotations

from django.contrib.auth.hashers import get_hashers
from django.core.checks import Error, register
from oauth2_provider.settings import oauth2_settings


@register()
def client_secret_hasher(app_configs, **kwargs) -> list[Error]:
    wanted = oauth2_settings.CLIENT_SECRET_HASHER
    if wanted == "default":
        return []
    algorithms = [hasher.algorithm for hasher in get_hashers()]
    if wanted not in algorithms:
        return [Error(f"CLIENT_SECRET_HASHER {wanted!r} is not in PASSWORD_HASHERS", id="platform_oauth.E001")]
    if algorithms[0] == wanted:
        message = "the client-secret hasher must not be the first PASSWORD_HASHERS entry (user passwords use it)"
        return [Error(message, id="platform_oauth.E002")]
    return []
