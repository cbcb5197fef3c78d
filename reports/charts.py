"""Inline SVG charts rendered on the server: a line chart (with reference lines), horizontal
bars, and a funnel. No JavaScript; every text node is escaped; every chart carries a
``<title>`` and an ``aria-label`` so it reads without sight and prints as vector.

The functions return :class:`markupsafe.Markup` so Jinja inserts them as they are — they
must therefore escape everything they are given, which ``_e`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

Fmt = Callable[[float], str]
COLORS = ("#0b5cab", "#6b7785", "#c0392b", "#2e7d32")


def _e(text: object) -> str:
    return str(escape(str(text)))


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


@dataclass(frozen=True)
class RefLine:
    value: float
    label: str
    color: str = "#c0392b"


def line_chart(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
    title: str,
    fmt: Fmt = lambda v: f"{v:g}", refs: Sequence[RefLine] = (), width: int = 760,
    height: int = 220, y_max: float | None = None, integer: bool = False,
) -> Markup:
    """``series`` is ``[(name, values)]`` aligned on ``labels`` (x axis, already formatted)."""
    left, right, top, bottom = 56, 22, 14, 28
    w, h = width - left - right, height - top - bottom
    top_value = max([v for _, vals in series for v in vals if v is not None]
                    + [r.value for r in refs] + [0])
    ymax = y_max if y_max is not None else _nice_max(top_value)
    if integer and ymax < 5:
        ymax = 5
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return top + h - (h * v / ymax if ymax else 0)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for k in range(6):
        v = ymax * k / 5
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   'class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" '
                   f'class="tick">{_e(fmt(v))}</text>')
    step = max(1, math.ceil(n / 8))
    for i, lab in enumerate(labels):
        if i % step == 0 or i == n - 1 and n <= 8:
            anchor = "end" if i == n - 1 and n > 1 else "middle"
            out.append(f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="{anchor}" '
                       f'class="tick">{_e(lab)}</text>')
    for idx, (name, vals) in enumerate(series):
        color = COLORS[idx % len(COLORS)]
        dash = ' stroke-dasharray="4 3"' if idx else ""
        # None = no data that day: the line breaks instead of dropping to zero
        segments: list[list[int]] = [[]]
        for i, v in enumerate(vals):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(i)
        for seg in filter(None, segments):
            if len(seg) == 1:
                i = seg[0]
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(vals[i]):.1f}" r="3" '
                           f'fill="{color}"><title>{_e(name)}</title></circle>')
                continue
            pts = " ".join(f"{x(i):.1f},{y(vals[i]):.1f}" for i in seg)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                       f'stroke-width="2"{dash}><title>{_e(name)}</title></polyline>')
    for r in refs:
        yy = y(min(r.value, ymax))
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{yy:.1f}" y2="{yy:.1f}" '
                   f'stroke="{r.color}" stroke-dasharray="6 4" class="ref"/>')
        out.append(f'<text x="{left + w - 4}" y="{yy - 4:.1f}" text-anchor="end" '
                   f'fill="{r.color}" class="reflabel">{_e(r.label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(
    rows: Sequence[tuple[str, float]], *, title: str, fmt: Fmt = lambda v: f"{v:g}",
    refs: Sequence[RefLine] = (), width: int = 760, bar: int = 18, label_width: int = 220,
    x_max: float | None = None,
) -> Markup:
    """Horizontal bars, one per ``(label, value)``; reference lines are vertical."""
    gap, top = 6, 18 if refs else 4
    height = top + len(rows) * (bar + gap) + 4
    value_w = 90
    w = width - label_width - value_w
    vmax = x_max if x_max is not None else _nice_max(
        max([v for _, v in rows] + [r.value for r in refs] + [0]))
    out = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, v) in enumerate(rows):
        yy = top + i * (bar + gap)
        bw = max(w * v / vmax, 0) if vmax else 0
        short = label if len(label) <= 34 else label[:33] + "…"
        out.append(f'<text x="{label_width - 8}" y="{yy + bar - 5}" text-anchor="end" '
                   f'class="label">{_e(short)}</text>')
        out.append(f'<rect x="{label_width}" y="{yy}" width="{bw:.1f}" height="{bar}" '
                   f'fill="{COLORS[0]}" rx="2"><title>{_e(label)}: {_e(fmt(v))}</title></rect>')
        out.append(f'<text x="{label_width + bw + 6:.1f}" y="{yy + bar - 5}" '
                   f'class="value">{_e(fmt(v))}</text>')
    for r in refs:
        xx = label_width + w * min(r.value, vmax) / vmax
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top - 4}" y2="{height}" '
                   f'stroke="{r.color}" stroke-dasharray="6 4" class="ref"/>')
        out.append(f'<text x="{xx:.1f}" y="{top - 7}" text-anchor="middle" fill="{r.color}" '
                   f'class="reflabel">{_e(r.label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def funnel(steps: Sequence[tuple[str, float]], *, title: str, fmt: Fmt = lambda v: f"{v:g}",
           pct: Fmt = lambda r: f"{r * 100:.1f} %", width: int = 520) -> Markup:
    """One bar per step, scaled to the first step; each shows its value and its share of
    the first step (a step may exceed the first: bars are capped, numbers are not)."""
    bar, gap, label_w, value_w = 26, 10, 170, 120
    height = len(steps) * (bar + gap)
    first = steps[0][1] if steps and steps[0][1] else 0
    w = width - label_w - value_w
    out = [
        f'<svg class="chart funnel" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, v) in enumerate(steps):
        share = v / first if first else 0.0
        bw = max(w * min(share, 1.0), 2)
        yy = i * (bar + gap)
        text = fmt(v) + (f" · {pct(share)}" if i else "")
        out.append(f'<text x="{label_w - 8}" y="{yy + bar / 2 + 5}" text-anchor="end" '
                   f'class="label">{_e(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{yy}" width="{bw:.1f}" height="{bar}" '
                   f'fill="{COLORS[0]}" opacity="{1 - 0.2 * i:.2f}" rx="3"/>')
        out.append(f'<text x="{label_w + bw + 6:.1f}" y="{yy + bar / 2 + 5}" '
                   f'class="value">{_e(text)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
