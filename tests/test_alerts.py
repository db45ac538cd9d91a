"""Alert rules: docs/ops/alerts.yml parses, each expression names only metrics the
platform exports (from the registry), each alert has a runbook section."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from observability import metrics

DOCS = Path(__file__).resolve().parent.parent / "docs" / "ops"
REQUIRED = {
    "RefreshTokenReuse", "InvalidTokenSpike", "InsufficientScopeSpike", "TenantMismatchSpike",
    "ConnectorRefreshFailureRate", "CrossTenantAttempts", "ProactiveRefreshLag",
}
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "and", "or", "offset", "histogram_quantile", "le", "tenant", "class", "reason",
    "outcome", "job", "result", "without", "unless", "on", "ignoring",
}


def _rules() -> list[dict]:
    document = yaml.safe_load((DOCS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_required_alerts_exist():
    names = {rule["alert"] for rule in _rules()}
    assert names >= REQUIRED, REQUIRED - names


def test_every_expression_names_exported_metrics():
    exported = metrics.exported_names()
    for rule in _rules():
        expr = re.sub(r'"[^"]*"', "", rule["expr"])  # label values are not metric names
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # nor are range selectors
        expr = re.sub(r"\boffset\s+\d+[smhdwy]", "", expr)  # or offsets
        identifiers = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - PROMQL_WORDS
        named = {i for i in identifiers if i.startswith("platform_")}
        assert named, f"{rule['alert']} names no platform metric"
        assert named <= exported, f"{rule['alert']}: {named - exported} are not exported"
        assert identifiers == named, f"{rule['alert']}: unknown words {identifiers - named}"


def test_every_alert_has_a_runbook_section():
    runbook = (DOCS / "auth-runbook.md").read_text()
    headings = {line.lstrip("# ").strip() for line in runbook.splitlines() if line.startswith("## ")}
    for rule in _rules():
        assert rule["alert"] in headings, f"{rule['alert']} has no '## {rule['alert']}' section"
        assert rule["annotations"]["runbook"].endswith("#" + rule["alert"].lower())
