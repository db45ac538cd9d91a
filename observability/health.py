"""Panels of the auth health page contributed by apps above this one (``<app>/health_panels.py``,
autodiscovered), so the page shows e.g. connected accounts without importing ``connectors``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Panel:
    title: str
    bars: list[tuple[str, int]]  # (label, count), drawn as horizontal bars
    empty_text: str = "nothing to show"
    help_text: str = ""
    rows: list[tuple[str, ...]] = field(default_factory=list)  # optional detail table
    row_headers: tuple[str, ...] = ()


_PANELS: list[Callable[[], Panel]] = []


def health_panel(fn: Callable[[], Panel]) -> Callable[[], Panel]:
    if fn not in _PANELS:
        _PANELS.append(fn)
    return fn


def panels() -> list[Panel]:
    """Every contributed panel, computed now in the current tenant's schema."""
    return [fn() for fn in _PANELS]
