"""Charts drawn on the server as SVG: no script, no network, every label escaped.

Presentation attributes (fill, stroke) are used instead of `style` so the pages' strict
Content-Security-Policy (no inline styles) still lets them render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#1f6feb", "#d29922", "#cf222e", "#2da44e", "#8250df", "#6e7781")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 2.5, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def _number(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[Series], *,
               y_label: str, x_label: str = "day (UTC)", percent: bool = False,
               width: int = 640, height: int = 260) -> Markup:
    """A labelled line chart; `percent` plots 0..1 as 0..100 %."""
    left, right, top, bottom = 56, 130, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" class="chart" aria-label="{escape(title)}" {FONT}>',
             f"<title>{escape(title)}</title>",
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    if not x_labels or not series:
        parts.append(f'<text x="{left}" y="{top + plot_h // 2}">no data yet</text></svg>')
        return Markup("".join(parts))
    top_value = 1.0 if percent else _nice_max(max((max(s.values, default=0) for s in series),
                                                  default=0))
    for i in range(5):  # horizontal grid with values
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(_number(value, percent))}</text>")
    count = len(x_labels)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    for i in sorted({0, count // 2, count - 1}):  # a few dates along the bottom
        parts.append(f'<text x="{x_at(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                     f"{escape(x_labels[i])}</text>")
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                 f"{escape(x_label)}</text>")
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>')
    for n, s in enumerate(series):
        points = " ".join(f"{x_at(i):.1f},{top + plot_h - plot_h * v / top_value:.1f}"
                          for i, v in enumerate(s.values))
        parts.append(f'<polyline fill="none" stroke="{escape(s.colour)}" stroke-width="2" '
                     f'points="{points}"/>')
        if count == 1:
            cx, cy = points.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{escape(s.colour)}"/>')
        last = s.values[-1] if s.values else 0
        ly = top + 12 + n * 16
        parts.append(f'<rect x="{left + plot_w + 10}" y="{ly - 9}" width="10" height="10" '
                     f'fill="{escape(s.colour)}"/>')
        parts.append(f'<text x="{left + plot_w + 24}" y="{ly}">{escape(s.name)}: '
                     f"{escape(_number(last, percent))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, items: Sequence[tuple[str, float]], *, unit: str,
              width: int = 420, bar: int = 18) -> Markup:
    """Horizontal bars, one per label, each with its value and unit."""
    label_w, value_w, top = 150, 70, 28
    height = top + max(len(items), 1) * (bar + 6) + 20
    plot_w = width - label_w - value_w
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" class="chart" aria-label="{escape(title)}" {FONT}>',
             f"<title>{escape(title)}</title>",
             f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    if not items:
        parts.append(f'<text x="4" y="{top + 12}">no data yet</text></svg>')
        return Markup("".join(parts))
    top_value = max(max(v for _, v in items), 1)
    for i, (label, value) in enumerate(items):
        y = top + i * (bar + 6)
        shown = label if len(label) <= 22 else label[:21] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 5}" text-anchor="end">'
                     f"<title>{escape(label)}</title>{escape(shown)}</text>")
        w = plot_w * value / top_value
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar}" '
                     f'fill="{PALETTE[0]}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 5}">'
                     f"{escape(_number(value, False))} {escape(unit)}</text>")
    parts.append(f'<text x="{label_w}" y="{height - 4}">unit: {escape(unit)}</text></svg>')
    return Markup("".join(parts))
