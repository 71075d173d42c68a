"""Horizontal bar charts as inline SVG: no script, no font or file from elsewhere, every text escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

ROW = 24  # px per bar
LABEL = 300  # px for the labels left of the bars
TRACK = 380  # px of the longest bar
VALUE = 280  # px for the figure right of each bar
CHAR = 6.6  # px per character of a 12px label, on average: longer labels are cut to fit


def fit(text: str, width: int) -> str:
    most = int(width / CHAR)
    return text if len(text) <= most else text[: most - 1] + "…"


@dataclass(frozen=True)
class Bar:
    label: str  # left of the bar ("" continues the group above)
    length: float  # in units of the chart's scale
    text: str  # the figure printed right of the bar
    color: str
    data: Mapping[str, str | int] = field(default_factory=dict)  # data-* attributes of the bar's group


def attributes(data: Mapping[str, str | int]) -> str:
    return "".join(f' data-{escape(k)}="{escape(str(v))}"' for k, v in data.items())


def bar_chart(title: str, bars: Sequence[Bar], scale: float, label_width: int = LABEL) -> str:
    """One bar per row, lengths relative to `scale` (the value of a full-length bar)."""
    height = ROW * len(bars) + 8
    width = label_width + TRACK + VALUE
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
    ]
    for i, bar in enumerate(bars):
        y = 4 + i * ROW
        length = 0.0 if scale <= 0 else max(0.0, min(1.0, bar.length / scale)) * TRACK
        parts.append(
            f'<g class="bar"{attributes(bar.data)}><title>{escape(bar.label)}: {escape(bar.text)}</title>'
            f'<text x="{label_width - 8}" y="{y + ROW / 2 + 4:.0f}" text-anchor="end">'
            f"{escape(fit(bar.label, label_width - 12))}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{ROW - 6}" rx="2" '
            f'fill="{escape(bar.color)}"/>'
            f'<text class="figure" x="{label_width + length + 6:.1f}" y="{y + ROW / 2 + 4:.0f}">'
            f"{escape(bar.text)}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
