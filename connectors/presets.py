"""Provider presets, read from ``connectors/data/presets.json`` (data, not code)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PRESETS_FILE = Path(__file__).resolve().parent / "data" / "presets.json"
PRESET_FIELDS = (
    "display_name",
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "userinfo_endpoint",
    "account_id_claim",
    "default_scopes",
    "scope_separator",
    "token_endpoint_auth_method",
    "pkce",
    "extra_authorize_params",
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
        value = raw.get(key, "" if key != "default_scopes" else [])
        if isinstance(value, str):
            value = value.format(**values)
        fields[key] = value
    return fields


def documented_lifetime(name: str) -> int | None:
    """The access-token lifetime a preset documents (``token_lifetime_seconds``), used when the
    provider's token answers carry no ``expires_in`` (``connectors.timing``)."""
    raw = _all().get(name) if name else None
    value = raw.get("token_lifetime_seconds") if raw else None
    return value if isinstance(value, int) and value > 0 else None
