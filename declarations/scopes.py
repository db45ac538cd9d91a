"""The scope registry. Apps declare the scopes they own in their ``scopes.py``; the authorization
server (DOT's ``SCOPES_BACKEND_CLASS``, ``oauth.scope_backend``), the consent page, the tool registry
and the tenant scope matrix all read it, so a scope cannot exist in one and be unknown to another."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    base: bool = False  # part of the minimal set a client asks for before any step-up
    admin_only: bool = False  # only tenant admins may be granted it, and only while they are admins


_SCOPES: dict[str, Scope] = {}


def declare_scopes(*scopes: Scope) -> None:
    for scope in scopes:
        existing = _SCOPES.get(scope.name)
        if existing is not None and existing != scope:
            raise ValueError(f"scope {scope.name!r} declared twice with different facts")
        _SCOPES[scope.name] = scope
    base_scopes.cache_clear()
    admin_only_scopes.cache_clear()


def all_scopes() -> dict[str, Scope]:
    return dict(_SCOPES)


def get_scope(name: str) -> Scope | None:
    return _SCOPES.get(name)


@cache
def base_scopes() -> tuple[str, ...]:
    return tuple(sorted(name for name, s in _SCOPES.items() if s.base))


@cache
def admin_only_scopes() -> frozenset[str]:
    return frozenset(name for name, s in _SCOPES.items() if s.admin_only)


def unknown(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n not in _SCOPES)
