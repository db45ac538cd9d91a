"""What the benchmarks share: Django over the bench database, tokens, MCP requests, timing in process,
gunicorn and wrk on loopback, child processes running another checkout's code, Celery workers and the
token providers, and the printing. Nothing here imports Django at module level."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from probe.ready import stop_process, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
HOST = f"127.0.0.1:{PORT}"
MODERN = "2026-07-28"


# --- Django --------------------------------------------------------------------------------------------
def code_root() -> Path:
    """The checkout whose project code this process runs: ``BENCH_CODE_ROOT`` (a child measuring
    another checkout, see ``child``) or this one. The bench package itself always comes from here."""
    return Path(os.environ.get("BENCH_CODE_ROOT") or ROOT).resolve()


def setup_django(*, migrate: bool = True, database: bool = True) -> None:
    """Django of ``code_root()`` over DATABASE_URL or the embedded PostgreSQL; ``migrate``: migrations
    and the demo data first. ``database=False``: a URL that is never connected to."""
    root = code_root()
    sys.path.insert(0, str(root))
    os.chdir(root)
    os.environ["BENCH_VIEWS"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config.dev_secrets import ensure_dev_env

    for key, value in ensure_dev_env().items():
        os.environ.setdefault(key, value)
    if not database:
        os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    elif not os.environ.get("DATABASE_URL"):
        from config.embedded_db import embedded_database_url

        os.environ["DATABASE_URL"] = embedded_database_url()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate_schemas", "-v", "0")
        with open(os.devnull, "w") as devnull:
            call_command("bootstrap_demo", stdout=devnull)


def child(name: str, *args: str, code: Path | None = None, env: dict[str, str] | None = None) -> Any:
    """``python -m bench <name> <args>`` in a new process, with the project code of checkout ``code``
    (default this one): the JSON its last line of output holds."""
    extra = {"BENCH_CODE_ROOT": str(code.resolve())} if code else {}
    out = subprocess.run(
        [sys.executable, "-m", "bench", name, *args],
        cwd=ROOT,
        env={**os.environ, **extra, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"bench {name} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- figures and printing --------------------------------------------------------------------------------
def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def p95_ms(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def table(header: list[str], rows: list[list[Any]], align: str = "") -> str:
    """A markdown table; ``align``: one letter per column, ``l`` or ``r`` (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if a == "l" else "---:" for a in align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def seconds(work: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Wall time of ``work(*args, **kwargs)``."""
    started = time.perf_counter()
    work(*args, **kwargs)
    return time.perf_counter() - started


def interleaved(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    """Each of ``runs`` once per round, in turn, so drift on the shared machine hits them alike."""
    found: dict[str, list[Any]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            found[name].append(run())
    return found


def profiled(work: Callable[[], Any], *, top: int = 20, where: str = "", strip: str = "") -> str:
    """cProfile of ``work()``: the top entries by own time, then (``where``, a regular expression of
    paths) the matching functions by cumulative time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    if where:
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(where, 2 * top)
    text = re.sub(r"\S*/site-packages/", "", out.getvalue().replace(strip + "/", "") if strip else out.getvalue())
    return re.sub(r"\n{3,}", "\n\n", text)


# --- tokens and MCP requests -----------------------------------------------------------------------------
def email_of(role: str, slug: str) -> str:
    """The demo users: acme's from bootstrap_demo, the scale tenants' from ``bench tenants-scale``."""
    return f"{role}@{slug}.example" if slug == "acme" else f"{role}.{slug}@scale.example"  # no '_' in a host


def mint_token(slug: str, *, scope: str = "crm.read", resource: list[str] | None = None, app: str = "bench") -> str:
    """An access token of the tenant's member, as the OAuth flow would issue it (``resource``: its
    audience; default this host's MCP URL of the tenant). Needs Django set up."""
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from oauth2_provider.models import AccessToken, Application, set_token_value

    from accounts.models import User

    raw = secrets.token_urlsafe(30)
    with schema_context(slug):
        application, _ = Application.objects.get_or_create(
            name=app,
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
            application=application,
            scope=scope,
            expires=timezone.now() + timedelta(hours=3),
            resource=[f"http://{HOST}/t/{slug}/mcp"] if resource is None else resource,
        )
        set_token_value(token, raw)
        token.save()
    return raw


def first_contact(slug: str) -> int:
    from django_tenants.utils import schema_context

    from crm.models import Contact

    with schema_context(slug):
        return Contact.objects.order_by("pk").values_list("pk", flat=True).first()


def oauth_token(base: str) -> str:
    """A token for acme's MCP resource through the whole flow: registration, login, consent, exchange."""
    from probe.oauth_flow import Browser, Tenant, obtain_tokens, register

    tenant = Tenant(f"{base}/t/acme", "acme")
    browser = Browser(tenant, "member@acme.example", password=os.environ["DEMO_MEMBER_PASSWORD"])
    browser.login()
    return obtain_tokens(browser, register(tenant), scope="crm.read")["access_token"]


def mcp_call_body(contact_id: int, tool: str = "crm_get_contact", meta: dict | None = None, **arguments: Any) -> str:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        **(meta or {}),
    }
    params = {"name": tool, "arguments": {"contact_id": contact_id, **arguments}, "_meta": meta}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})


def mcp_headers(token: str, tool: str = "crm_get_contact") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }


class InProcess:
    """Requests through Django in this process (no HTTP server, no load generator on the cores)."""

    def __init__(self) -> None:
        from django.test import Client

        self.client = Client(HTTP_HOST=HOST)

    def __call__(self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None):
        meta = {
            f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items() if k.lower() != "content-type"
        }
        if method == "POST":
            return self.client.post(path, data=body, content_type="application/json", **meta)
        return self.client.get(path, **meta)

    def timed(self, request: tuple, n: int, check: bool = False) -> list[float]:
        """Wall time of ``n`` sequential requests; ``check``: each must be a successful tool result."""
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            response = self(*request)
            samples.append(time.perf_counter() - started)
            if check and (response.status_code != 200 or b'"isError": false' not in response.content):
                raise SystemExit(f"{request[1]}: {response.status_code} {response.content[:300]!r}")
        return samples

    def queries(self, request: tuple) -> int:
        """Statements of the second request (steady state: connection already in the tenant)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                response = self(*request)
        assert response.status_code == 200, (request[1], response.status_code, response.content[:300])
        return len(ctx.captured_queries)


def mcp_request(slug: str, token: str, contact_id: int) -> tuple:
    """The authorized ``crm_get_contact`` tools/call of one tenant, as (method, path, body, headers)."""
    return ("POST", f"/t/{slug}/mcp", mcp_call_body(contact_id), mcp_headers(token))


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


# --- gunicorn and wrk ------------------------------------------------------------------------------------
WORKER_CLASSES = {
    "sync": ("sync", "config.wsgi"),
    "gthread": ("gthread", "config.wsgi"),
    "uvicorn": ("uvicorn.workers.UvicornWorker", "config.asgi"),
}


@contextmanager
def gunicorn_process(
    port: int = PORT,
    workers: int = 2,
    *,
    worker_class: str = "sync",
    threads: int = 1,
    root: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    """The gunicorn master, once ``/t/acme/healthz`` answers. ``root``: serve the code of another
    checkout (before/after in one run) with this virtualenv; the database and environment are this
    run's. ``env``: variables set last (e.g. ``CONN_MAX_AGE``)."""
    base = f"http://127.0.0.1:{port}"
    # many code exchanges from one address: lift the token rate limits (their own cost stays measured)
    limits = {"OAUTH_TOKEN_RATE_LIMIT": "1000000", "OAUTH_TOKEN_CLIENT_RATE_LIMIT": "1000000"}
    # under ASGI every request runs in its own thread, so persistent connections would pile up until
    # PostgreSQL refuses clients: Django's docs say to disable them there
    max_age = "0" if worker_class == "uvicorn" else "600"
    server_env = {**limits, **os.environ, "PUBLIC_BASE_URL": base, "CONN_MAX_AGE": max_age, **(env or {})}
    server_env.pop("BENCH_CODE_ROOT", None)
    klass, app = WORKER_CLASSES[worker_class]
    command = [str(Path(sys.executable).parent / "gunicorn"), app, "--chdir", str(root or ROOT)]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", klass]
    server = subprocess.Popen([*command, "--threads", str(threads), "--log-level", "warning"], env=server_env)
    try:
        if not wait_until_up(f"{base}/t/acme/healthz"):
            raise SystemExit(f"gunicorn on {base} did not start")
        yield server
    finally:
        stop_process(server)


@contextmanager
def gunicorn(port: int = PORT, workers: int = 2, **options: Any) -> Iterator[str]:
    """``gunicorn_process`` (same options): its base URL."""
    with gunicorn_process(port, workers, **options):
        yield f"http://127.0.0.1:{port}"


def ensure_wrk() -> str:
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


# count non-2xx so a broken run cannot pass for a fast one
_COUNT_BAD = """bad = 0
response = function(status) if status >= 300 then bad = bad + 1 end end
done = function() io.write("BAD " .. bad .. "\\n") end"""


def wrk_script(method: str, body: str | None, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"'] + ([f"wrk.body = {json.dumps(body)}"] if body is not None else [])
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    return "\n".join([*lines, _COUNT_BAD])


def mcp_round_robin_script(targets: list) -> str:
    """Authorized ``crm_get_contact`` calls going round-robin over ``targets``, one ``(slug, token,
    contact_id)`` each (each request changes tenant)."""
    entries = ",\n".join(
        "{" + f'path = "/t/{slug}/mcp", token = "Bearer {token}", body = {json.dumps(mcp_call_body(cid))}' + "}"
        for slug, token, cid in targets
    )
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in mcp_headers("").items() if k != "Authorization")
    return f"""targets = {{ {entries} }}
i = 0
wrk.method = "POST"
{headers}
request = function()
  i = i % #targets + 1
  local t = targets[i]
  wrk.headers["Authorization"] = t.token
  return wrk.format(nil, t.path, nil, t.body)
end
{_COUNT_BAD}"""


def bench_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line of benchmark ``module`` (its ``__name__``): ``python -m bench <name>``, described
    by the first line of ``doc``."""
    name = module.rsplit(".", 1)[-1].replace("_", "-")
    return argparse.ArgumentParser(prog=f"python -m bench {name}", description=doc.split("\n")[0])


def wrk_parser(module: str, doc: str, *, duration: int, rounds: int) -> argparse.ArgumentParser:
    """``bench_parser`` of a bench of interleaved wrk rounds (``interleaved``, ``run_wrk``): seconds per
    run, connections, rounds; the bench adds its own options."""
    parser = bench_parser(module, doc)
    parser.add_argument("--duration", type=int, default=duration)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


def wrk(url: str, script: str, duration: int, connections: int = 8, threads: int = 2) -> tuple[float, int]:
    """Requests per second and requests made; a run with any non-2xx answer is refused. The script (it
    may hold bearer tokens) lives in a private temporary file for the run only."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:  # mode 0600
        fh.write(script)
    try:
        command = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", fh.name, url]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(fh.name)
    bad = int(re.search(r"BAD (\d+)", out).group(1))
    if bad:
        raise SystemExit(f"{bad} non-2xx responses from {url}:\n{out}")
    rate, requests = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"(\d+) requests in", out)
    return float(rate.group(1)), int(requests.group(1))


def run_wrk(url: str, script: str, duration: int, connections: int = 8) -> float:
    """``wrk`` with two threads: requests per second."""
    return wrk(url, script, duration, connections)[0]


def wrk_modes(modes: dict[str, list], duration: int, rounds: int, **server: Any) -> dict[str, list[float]]:
    """req/s of round-robin ``tools/call`` over each mode's ``(slug, token, contact_id)`` targets against
    one ``gunicorn`` (``server``: its options), modes interleaved over ``rounds``, after a 2 s warm-up
    of each (every worker's connection has seen every schema once)."""
    url = f"http://{HOST}/"
    scripts = {name: mcp_round_robin_script(targets) for name, targets in modes.items()}
    with gunicorn(PORT, **server):
        for script in scripts.values():
            run_wrk(url, script, 2)
        return interleaved(
            {name: lambda s=script: run_wrk(url, s, duration) for name, script in scripts.items()}, rounds
        )


# --- Celery and token providers ------------------------------------------------------------------------
def celery(kind: str, *args: str, code: Path = ROOT, env: dict[str, str] | None = None, log: Path | None = None):
    """``celery -A config <kind> <args>`` running checkout ``code``; output to ``log`` or nowhere."""
    out = log.open("wb") if log else subprocess.DEVNULL
    full_env = {**os.environ, "LOG_LEVEL": "WARNING", **(env or {}), "PYTHONPATH": str(code)}
    full_env.pop("BENCH_CODE_ROOT", None)
    command = [sys.executable, "-m", "celery", "-A", "config", kind, *args]
    return subprocess.Popen(command, cwd=code, env=full_env, stdout=out, stderr=subprocess.STDOUT)


@contextmanager
def celery_workers(count: int, threads: int = 8, code: Path = ROOT, env: dict[str, str] | None = None):
    """``count`` worker processes (``threads`` each) running checkout ``code``, answering pings."""
    from config.celery import app

    pool = ["--pool", "threads", "--concurrency", str(threads)] if threads > 1 else ["--pool", "solo"]
    with ExitStack() as stack:
        for i in range(count):
            name = f"w{i}-{os.getpid()}@bench"
            args = ["-n", name, *pool, "-l", "warning", "--without-gossip", "--without-mingle"]
            stack.callback(stop_process, celery("worker", *args, code=code, env=env))
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5) or []) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        yield


@contextmanager
def loopback_provider(delay_ms: int = 0) -> Iterator[str]:
    """bench/loopback_provider.py, a fast rotating token endpoint: its URL."""
    command = [sys.executable, str(ROOT / "bench" / "loopback_provider.py"), str(delay_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        yield json.loads(process.stdout.readline())["url"]
    finally:
        stop_process(process)


@contextmanager
def oidc_provider(env: dict[str, str]) -> Iterator[str]:
    """The npm oidc-provider of tests/node_oidc (``npm ci`` there first) on loopback: its issuer."""
    process = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=ROOT / "tests" / "node_oidc",
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield json.loads(process.stdout.readline())["issuer"]
    finally:
        stop_process(process)


def get_json(url: str, method: str = "GET") -> dict:
    import httpx

    return httpx.request(method, url, timeout=10).json()


# --- many tenants --------------------------------------------------------------------------------------
class RoundRobin:
    """Authorized tools/call going round-robin over ``(slug, token, contact_id)`` targets, in process;
    each run carries on where the last one stopped (so a second pass finds every schema seen once)."""

    def __init__(self, targets: list, client: InProcess | None = None) -> None:
        self.requests = [mcp_request(slug, token, contact) for slug, token, contact in targets]
        self.client, self.position = client or InProcess(), 0

    def warm_up(self, calls: int) -> None:
        """The first ``calls`` targets, where the round-robin stands unchanged."""
        for request in self.requests[:calls]:
            self.client.timed(request, 1, check=True)

    def run(self, calls: int) -> list[float]:
        samples = []
        for _ in range(calls):
            samples += self.client.timed(self.requests[self.position % len(self.requests)], 1, check=True)
            self.position += 1
        return samples


def backend_memory() -> list[float]:
    """This connection's PostgreSQL backend: MB in all memory contexts, MB in CacheMemoryContext and its
    direct children (relcache, catcache), and its prepared statements. PostgreSQL 17 replaced the
    contexts' ``parent`` name by a ``path`` of per-call ids."""
    from django.db import connection

    child_of_cache = (
        "'CacheMemoryContext' IN (name, parent)"
        if connection.cursor().connection.info.server_version < 170000
        else "name = 'CacheMemoryContext'"
        " OR path[level - 1] = (SELECT path[level] FROM c WHERE name = 'CacheMemoryContext')"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH c AS MATERIALIZED (SELECT * FROM pg_backend_memory_contexts) "
            f"SELECT sum(total_bytes), sum(total_bytes) FILTER (WHERE {child_of_cache}), "
            "(SELECT count(*) FROM pg_prepared_statements) FROM c"
        )
        total, cache, prepared = cursor.fetchone()
    return [float(total) / 2**20, float(cache or 0) / 2**20, int(prepared)]


def target(slug: str, host: str = HOST) -> tuple[str, str, int]:
    """``(slug, token, contact_id)``: a token of the tenant's member for its MCP URL at ``host``, and a
    contact to read."""
    return slug, mint_token(slug, resource=[f"http://{host}/t/{slug}/mcp"]), first_contact(slug)


def tenant_targets(count: int, prefix: str = "scale_", host: str = HOST) -> list[tuple[str, str, int]]:
    """``target`` of each of the first ``count`` tenants whose schema starts with ``prefix`` (made by
    ``bench tenants-scale``)."""
    from tenants.models import Tenant

    slugs = (
        Tenant.objects.filter(schema_name__startswith=prefix)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    return [target(slug, host) for slug in slugs[:count]]
