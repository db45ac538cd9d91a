"""Reads of the scope matrix: the tenant's ToolPolicy rows over the code's declared defaults (writes:
``mcp_tools.services``)."""

from __future__ import annotations

from dataclasses import dataclass

from declarations.tools import ToolSpec, all_tools
from mcp_tools.models import ToolPolicy


@dataclass(frozen=True)
class EffectivePolicy:
    spec: ToolSpec
    enabled: bool
    scopes: tuple[str, ...]
    noauth: bool

    @property
    def security_schemes(self) -> list[dict[str, object]]:
        if self.noauth:
            return [{"type": "noauth"}]
        return [{"type": "oauth2", "scopes": list(self.scopes)}]


def effective_policies() -> dict[str, EffectivePolicy]:
    """One query: every registered tool's policy in the current tenant."""
    rows = {
        name: (enabled, scopes, noauth)
        for name, enabled, scopes, noauth in ToolPolicy.objects.values_list("tool_name", "enabled", "scopes", "noauth")
    }
    return {name: policy_for(name, rows.get(name)) for name in all_tools()}


def policy_for(name: str, row: tuple[bool, str, bool] | None) -> EffectivePolicy | None:
    """The effective policy of one tool from its matrix row (``(enabled, scopes, noauth)`` or None)."""
    spec = all_tools().get(name)
    if spec is None:
        return None
    if row is None:
        return EffectivePolicy(spec, spec.enabled_by_default, spec.scopes, spec.noauth)
    enabled, scopes, noauth = row
    return EffectivePolicy(spec, enabled, tuple(scopes.split()), noauth)


def load_policy(name: str) -> EffectivePolicy | None:
    row = ToolPolicy.objects.filter(tool_name=name).values_list("enabled", "scopes", "noauth").first()
    return policy_for(name, row)
