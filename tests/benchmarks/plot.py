"""Sweep wall time against fleet size, concurrent and sequential, with the lower bounds: an SVG
written by hand (no plotting library is a dependency). Both axes are logarithmic."""

from __future__ import annotations

import math
from typing import Any

WIDTH, HEIGHT, MARGIN = 640, 400, 60
SERIES = (  # (mode, value key, colour, dashed, label)
    ("concurrent", "wall_s", "#1f77b4", False, "sweep, concurrency {c}"),
    ("concurrent", "bound_s", "#1f77b4", True, "lower bound, concurrency {c}"),
    ("sequential", "wall_s", "#d62728", False, "sweep, sequential"),
    ("sequential", "bound_s", "#d62728", True, "lower bound, sequential"),
)


def _decades(low: float, high: float) -> list[float]:
    first = math.floor(math.log10(low))
    last = max(math.ceil(math.log10(high)), first + 1)  # at least one decade wide
    return [10.0**e for e in range(first, last + 1)]


def sweep_time_svg(runs: list[dict[str, Any]], concurrency: int) -> str:
    xs = sorted({r["sources"] for r in runs})
    ys = [r[k] for r in runs for k in ("wall_s", "bound_s")]
    x_ticks, y_ticks = _decades(min(xs), max(xs)), _decades(min(ys), max(ys))

    def sx(v: float) -> float:
        span = math.log10(x_ticks[-1]) - math.log10(x_ticks[0])
        return MARGIN + (math.log10(v) - math.log10(x_ticks[0])) / span * (WIDTH - 2 * MARGIN)

    def sy(v: float) -> float:
        span = math.log10(y_ticks[-1]) - math.log10(y_ticks[0])
        return (
            HEIGHT
            - MARGIN
            - (math.log10(v) - math.log10(y_ticks[0])) / span * (HEIGHT - 2 * MARGIN)
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}"'
        ' font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">'
        "jobfallback sweep: wall time against fleet size</text>",
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">'
        "source workspaces (20 jobs each)</text>",
        f'<text x="15" y="{HEIGHT / 2}" text-anchor="middle" '
        f'transform="rotate(-90 15 {HEIGHT / 2})">seconds</text>',
    ]
    for t in x_ticks:
        parts.append(
            f'<line x1="{sx(t):.1f}" y1="{MARGIN}" x2="{sx(t):.1f}" '
            f'y2="{HEIGHT - MARGIN}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{sx(t):.1f}" y="{HEIGHT - MARGIN + 16}" text-anchor="middle">{t:g}</text>'
        )
    for t in y_ticks:
        parts.append(
            f'<line x1="{MARGIN}" y1="{sy(t):.1f}" x2="{WIDTH - MARGIN}" '
            f'y2="{sy(t):.1f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="{MARGIN - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    legend_y = MARGIN + 10
    for mode, key, colour, dashed, label in SERIES:
        points = sorted((r["sources"], r[key]) for r in runs if r["mode"] == mode)
        if not points:
            continue
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        if not dashed:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>'
                for x, y in points
            )
        parts.append(
            f'<line x1="{MARGIN + 10}" y1="{legend_y}" x2="{MARGIN + 40}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        parts.append(
            f'<text x="{MARGIN + 46}" y="{legend_y + 4}">{label.format(c=concurrency)}</text>'
        )
        legend_y += 16
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
