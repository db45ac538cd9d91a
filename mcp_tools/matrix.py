"""The effective scope matrix: the tenant's ToolPolicy rows over the code's declared defaults."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from declarations.scopes import unknown
from declarations.tools import ToolSpec, all_tools
from mcp_tools.models import ToolPolicy, ToolPolicyChange


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


def policy_snapshot(policy: ToolPolicy) -> dict[str, object]:
    return {
        "enabled": policy.enabled,
        "scopes": list(policy.scope_set),
        "noauth": policy.noauth,
        "allow_noauth_write": policy.allow_noauth_write,
    }


def validate_policy(policy: ToolPolicy) -> None:
    spec = all_tools().get(policy.tool_name)
    if spec is None:
        raise ValidationError({"tool_name": f"no tool named {policy.tool_name!r} is registered"})
    if bad := unknown(policy.scope_set):
        raise ValidationError({"scopes": f"unknown scopes: {', '.join(bad)}"})
    if policy.noauth and policy.scope_set:
        raise ValidationError({"scopes": "a 'no auth' tool takes no scopes"})
    if not policy.noauth and not policy.scope_set:
        raise ValidationError({"scopes": "name at least one scope, or mark the tool 'no auth'"})
    if policy.noauth and spec.is_write and not policy.allow_noauth_write:
        raise ValidationError({"noauth": f"{spec.name} writes data; 'no auth' needs the explicit override flag"})


def ensure_policies() -> None:
    """Materialize the code defaults as rows, so the admin shows every tool."""
    existing = set(ToolPolicy.objects.values_list("tool_name", flat=True))
    ToolPolicy.objects.bulk_create(
        [
            ToolPolicy(
                tool_name=name, enabled=spec.enabled_by_default, scopes=" ".join(spec.scopes), noauth=spec.noauth
            )
            for name, spec in all_tools().items()
            if name not in existing
        ],
        ignore_conflicts=True,
    )


def save_policy(policy: ToolPolicy, *, changed_by_id: int | None) -> ToolPolicy:
    validate_policy(policy)
    with transaction.atomic():
        before = ToolPolicy.objects.select_for_update().filter(pk=policy.pk).first() if policy.pk else None
        policy.save()
        ToolPolicyChange.objects.create(
            tool_name=policy.tool_name,
            changed_by_id=changed_by_id,
            before=policy_snapshot(before) if before else None,
            after=policy_snapshot(policy),
        )
    return policy
