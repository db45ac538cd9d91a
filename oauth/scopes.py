"""The scope registry: the one place scopes are named and described.

The authorization server (DOT's ``SCOPES``), the consent page, the tool registry and the tenant scope
matrix all read it, so a scope cannot exist in one and be unknown to another. Plain data, importable
from settings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    base: bool = False  # part of the minimal set a client asks for before any step-up
    admin_only: bool = False  # only tenant admins may be granted it, and only while they are admins


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("crm.read", "Read contacts and notes in this workspace's CRM", base=True),
        Scope("crm.write", "Create notes and update contacts in this workspace's CRM"),
        Scope("crm.admin", "Delete contacts from this workspace's CRM (administrators)", admin_only=True),
        Scope("tenant.read", "Read basic information about this workspace", base=True),
        # connectors: use the caller's own connected accounts (never their credentials)
        Scope("connections", "Use your connected accounts at other services on your behalf"),
        Scope("connections.admin", "See every member's connected accounts (administrators)", admin_only=True),
    )
}

BASE_SCOPES: tuple[str, ...] = tuple(name for name, s in SCOPES.items() if s.base)
ADMIN_ONLY_SCOPES: frozenset[str] = frozenset(name for name, s in SCOPES.items() if s.admin_only)


def describe(names: list[str] | tuple[str, ...]) -> list[Scope]:
    return [SCOPES[n] for n in names if n in SCOPES]


def unknown(names: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    return sorted(n for n in names if n not in SCOPES)
