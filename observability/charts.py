"""Server-side inline SVG charts for the auth health page: no JavaScript, no vendored assets, nothing
fetched from elsewhere. Every text is escaped; the SVG is built from numbers and escaped labels only."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2b6cb0", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#0987a0", "#d53f8c", "#4a5568", "#dd6b20")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 760, 240, 40, 28, 12


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def stacked_columns(label: str, hours: list[datetime], series: dict[str, list[int]]) -> SafeString:
    """One column per hour, stacked by series, with a y-axis maximum and hour labels every 6 hours."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(hours))]
    peak = max([*totals, 1])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(hours), 1)
    parts = [
        f'<svg class="auth-chart" role="img" aria-label="{escape(label)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, hour in enumerate(hours):
        x = LEFT + i * step + 1
        y = TOP + plot_h
        for s, (name, values) in enumerate(series.items()):
            if not values[i]:
                continue
            h = plot_h * values[i] / peak
            y -= h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step - 2:.1f}" height="{h:.1f}" '
                f'fill="{color(s)}"><title>{escape(name)} {hour:%H}:00: {values[i]}</title></rect>'
            )
        if i % 6 == 0 or i == len(hours) - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
                f'font-size="11">{hour:%H}:00</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (numbers and escaped labels only)


def horizontal_bars(label: str, bars: list[tuple[str, int]]) -> SafeString:
    peak = max([n for _, n in bars] + [1])
    row, label_w = 26, 220
    height = max(len(bars), 1) * row + 8
    parts = [
        f'<svg class="auth-chart" role="img" aria-label="{escape(label)}" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (name, count) in enumerate(bars):
        y = 4 + i * row
        w = (WIDTH - label_w - 60) * count / peak
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" font-size="12">{escape(name)}</text>')
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}" fill="{color(i)}">'
            f"<title>{escape(name)}: {count}</title></rect>"
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="12">{count}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (numbers and escaped labels only)


def legend(series: dict[str, list[int]]) -> list[tuple[str, str, int]]:
    return [(name, color(i), sum(values)) for i, (name, values) in enumerate(series.items())]
