"""Shared set-up for the benchmark scripts: environment, database, a gunicorn on loopback, wrk. Nothing
here imports Django at module level (``bench/tenants_spread.py`` sets Django up per checkout)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from probe.ready import stop_process, wait_until_up

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["BENCH_VIEWS"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config.dev_secrets import ensure_dev_env

    for key, value in ensure_dev_env().items():
        os.environ.setdefault(key, value)
    if not os.environ.get("DATABASE_URL"):
        from config.embedded_db import embedded_database_url

        os.environ["DATABASE_URL"] = embedded_database_url()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "-v", "0")
    with open(os.devnull, "w") as devnull:
        call_command("bootstrap_demo", stdout=devnull)


# gunicorn worker classes the benchmarks can switch between (bench/mcp_throughput.py --worker-class)
WORKER_CLASSES = {
    "sync": ("sync", "config.wsgi"),
    "gthread": ("gthread", "config.wsgi"),
    "uvicorn": ("uvicorn.workers.UvicornWorker", "config.asgi"),
}


@contextmanager
def gunicorn(
    port: int,
    workers: int = 2,
    *,
    worker_class: str = "sync",
    threads: int = 1,
    root: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``root``: serve the code of another checkout (e.g. main's worktree, for before/after in one run)
    with this virtualenv; the database and environment are this run's. ``env``: variables set last
    (over the benchmark defaults, e.g. ``CONN_MAX_AGE``)."""
    base = f"http://127.0.0.1:{port}"
    # the token benchmark exchanges hundreds of codes from one address: lift the token rate limits
    # (the limits' own cost, a cache increment or two, stays in the measurement)
    limits = {"OAUTH_TOKEN_RATE_LIMIT": "1000000", "OAUTH_TOKEN_CLIENT_RATE_LIMIT": "1000000"}
    # under ASGI every request runs in its own thread (Django's ThreadSensitiveContext), so persistent
    # connections would pile up, one per request, until PostgreSQL refuses clients: Django's docs say
    # to disable them there, which makes every ASGI request open a connection
    max_age = "0" if worker_class == "uvicorn" else "600"
    server_env = {**limits, **os.environ, "PUBLIC_BASE_URL": base, "CONN_MAX_AGE": max_age, **(env or {})}
    klass, app = WORKER_CLASSES[worker_class]
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            app,
            "--chdir",
            str(root or ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            klass,
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        env=server_env,
    )
    try:
        wait_until_up(f"{base}/t/acme/healthz")
        yield base
    finally:
        stop_process(server)


@contextmanager
def tool_policy_override(schema: str, tool_name: str, **fields: Any) -> Iterator[None]:
    """Set a tool's policy row in ``schema`` for the benchmark and put back exactly what was there
    (the row's previous values, or no row) afterwards, even when the benchmark fails."""
    from django_tenants.utils import schema_context

    from mcp_tools.models import ToolPolicy

    with schema_context(schema):
        previous = ToolPolicy.objects.filter(tool_name=tool_name).first()
        saved = {name: getattr(previous, name) for name in fields} if previous else None
        ToolPolicy.objects.update_or_create(tool_name=tool_name, defaults=fields)
    try:
        yield
    finally:
        with schema_context(schema):
            if saved is None:
                ToolPolicy.objects.filter(tool_name=tool_name).delete()
            else:
                ToolPolicy.objects.filter(tool_name=tool_name).update(**saved)


# --- MCP request bodies and wrk ----------------------------------------------------------------------
MODERN = "2026-07-28"


def mcp_call_body(contact_id: int) -> str:
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    params = {"name": "crm_get_contact", "arguments": {"contact_id": contact_id}, "_meta": meta}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


# count non-2xx so a broken run cannot pass for a fast one
_COUNT_BAD = """bad = 0
response = function(status) if status >= 300 then bad = bad + 1 end end
done = function() io.write("BAD " .. bad .. "\\n") end"""


def wrk_script(method: str, body: str | None, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    lines.append(_COUNT_BAD)
    return "\n".join(lines)


def mcp_round_robin_script(targets: list) -> str:
    """A wrk script whose requests are authorized ``crm_get_contact`` calls going round-robin over
    ``targets``, one ``(slug, token, contact_id)`` each (each request changes tenant)."""
    entries = ",\n".join(
        "{" + f'path = "/t/{slug}/mcp", token = "Bearer {token}", body = {json.dumps(mcp_call_body(cid))}' + "}"
        for slug, token, cid in targets
    )
    return f"""targets = {{ {entries} }}
i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["MCP-Protocol-Version"] = "{MODERN}"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "crm_get_contact"
request = function()
  i = i % #targets + 1
  local t = targets[i]
  wrk.headers["Authorization"] = t.token
  return wrk.format(nil, t.path, nil, t.body)
end
{_COUNT_BAD}"""


def run_wrk(wrk: str, url: str, script: str, duration: int, connections: int) -> float:
    """Requests per second; a run with any non-2xx answer is refused. The script (it may hold bearer
    tokens) lives in a private temporary file for the run only."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:  # mode 0600
        fh.write(script)
    try:
        out = subprocess.run(
            [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "-s", fh.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = int(re.search(r"BAD (\d+)", out).group(1))
    if bad:
        raise SystemExit(f"{bad} non-2xx responses from {url}:\n{out}")
    return rate


# --- the many-tenants benchmarks' tenants (bench/tenants_scale.py makes them) ------------------------
def email_of(role: str, slug: str) -> str:
    return f"{role}@{slug}.example" if slug == "acme" else f"{role}.{slug}@scale.example"  # no '_' in a host


def mint_token(slug: str, host: str) -> tuple[str, int]:
    """An access token of the tenant's member for its MCP resource on ``host`` (as the OAuth flow would
    issue it: crm.read), and the tenant's first contact id. Needs Django set up."""
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from oauth2_provider.models import AccessToken, Application, set_token_value

    from accounts.models import User
    from crm.models import Contact

    raw = secrets.token_urlsafe(30)
    with schema_context(slug):
        app, _ = Application.objects.get_or_create(
            name="bench-scale",
            defaults={
                "client_type": "public",
                "authorization_grant_type": "authorization-code",
                "redirect_uris": "https://bench.example/cb",
                "client_secret": "",
                "hash_client_secret": False,  # PBKDF2 of a secret a public client never uses: ~1 s each here
            },
        )
        token = AccessToken(
            user=User.objects.get(email=email_of("member", slug)),
            application=app,
            scope="crm.read",
            expires=timezone.now() + timedelta(hours=3),
            resource=[f"http://{host}/t/{slug}/mcp"],
        )
        set_token_value(token, raw)
        token.save()
        contact_id = Contact.objects.order_by("pk").values_list("pk", flat=True).first()
    return raw, contact_id
