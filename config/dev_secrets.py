"""Per-checkout development secrets.

On a developer machine nothing is configured, yet the platform must start with real, unique secrets
(never committed defaults). The first start writes them to ``var/dev.env`` (git-ignored) and every
later start reads the same file back, so sessions, encrypted credentials and demo passwords survive
restarts. Production (``DJANGO_ENV=production``) never reads or writes this file.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PLATFORM_VAR_DIR", BASE_DIR / "var"))
DEV_ENV_FILE = VAR_DIR / "dev.env"

# what production must be given (it has no generated defaults): config.settings and make run refuse
# to start without them
PRODUCTION_REQUIRED = ("SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "ALLOWED_HOSTS", "PUBLIC_BASE_URL")

_GENERATED = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "FERNET_KEYS": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "DEMO_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
    "DEMO_MEMBER_PASSWORD": lambda: secrets.token_urlsafe(12),
    "METRICS_TOKEN": lambda: secrets.token_urlsafe(32),  # observability: the /metrics scrape token
}


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def ensure_dev_env() -> dict[str, str]:
    """Return the checkout's dev secrets, generating any that are missing (file mode 0600)."""
    values = read_env_file(DEV_ENV_FILE)
    missing = {k: make() for k, make in _GENERATED.items() if k not in values}
    if missing:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        values.update(missing)
        body = "# Generated once per checkout for development. Never commit this file.\n"
        body += "".join(f"{k}={v}\n" for k, v in values.items())
        fd = os.open(DEV_ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
    return values
