"""Writes on the scope matrix: the audited change of a tool's policy and the rows of the code
defaults (reads: ``mcp_tools.selectors``). Services take keyword arguments only."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from declarations.scopes import unknown
from declarations.tools import all_tools
from mcp_tools.models import ToolPolicy, ToolPolicyChange


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


@transaction.atomic
def ensure_policies() -> None:
    """Materialize the code defaults of tools that have no row yet, so the admin shows every tool.
    Runs after every ``migrate`` of a tenant schema (``mcp_tools.receivers``), so also when
    a tenant is created; existing rows (an admin's choices) are left as they are."""
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


def save_policy(*, policy: ToolPolicy, changed_by_id: int | None) -> ToolPolicy:
    """Validate and save an admin's change to a tool's policy, with its audit row, atomically."""
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
