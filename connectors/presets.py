"""Provider presets, read from ``connectors/data/presets.json`` (data, not code)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from connectors.models import ENDPOINT_FIELDS

PRESETS_FILE = Path(__file__).resolve().parent / "data" / "presets.json"
PRESET_FIELDS = (
    "display_name",
    "issuer",
    *ENDPOINT_FIELDS,
    "account_id_claim",
    "default_scopes",
    "scope_separator",
    "token_endpoint_auth_method",
    "pkce",
    "extra_authorize_params",
    "jwks_uri",
    "authorization_response_iss_parameter_supported",
)


@cache
def _all() -> dict[str, dict[str, Any]]:
    data = json.loads(PRESETS_FILE.read_text())
    return {name: value for name, value in data.items() if not name.startswith("_")}


def preset_names() -> list[str]:
    return sorted(_all())


def preset(name: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The preset's provider fields with ``{placeholders}`` filled from its defaults and ``params``."""
    raw = _all().get(name)
    if raw is None:
        return None
    values = {**raw.get("params", {}), **(params or {})}
    fields: dict[str, Any] = {}
    for key in PRESET_FIELDS:
        value = raw.get(key, [] if key == "default_scopes" else False if key.endswith("_supported") else "")
        if isinstance(value, str):
            value = value.format(**values)
        fields[key] = value
    overrides = raw.get("issuer_overrides")
    if overrides and values.get(overrides["param"]) in overrides["values"]:
        # e.g. Entra's "common": ID tokens name the user's own directory, "{tenantid}" is their tid claim
        fields["issuer"] = overrides["values"][values[overrides["param"]]].format(**values)
    return fields


def documented_lifetime(name: str) -> int | None:
    """The access-token lifetime a preset documents (``token_lifetime_seconds``), used when the
    provider's token answers carry no ``expires_in`` (``connectors.timing``)."""
    raw = _all().get(name) if name else None
    value = raw.get("token_lifetime_seconds") if raw else None
    return value if isinstance(value, int) and value > 0 else None


def allowed_hosts(name: str) -> set[str]:
    """The hosts a preset's provider documents for its endpoints and APIs (empty for no preset)."""
    return set(_all().get(name, {}).get("allowed_hosts", []))


def id_token_issuer_aliases(name: str) -> set[str]:
    """Other ``iss`` values a preset's provider documents for its ID tokens (Google's bare host name)."""
    return set(_all().get(name, {}).get("id_token_issuer_aliases", []))
