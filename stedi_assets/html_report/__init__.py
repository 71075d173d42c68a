"""`stedi report`: one self-contained HTML page about a view of the lake (inline SVG charts, no script):
rows per zone for each policy, who the rules kept out and why, the quarantine by reason, every check's
result, and a sample of each table with personal data masked. (report.py beside this package prints the
CLI's plain-text tables.)"""

from __future__ import annotations

from pathlib import Path

from .facts import Facts, gather
from .page import render

__all__ = ["Facts", "gather", "write_page"]

PAGE = "report.html"


def write_page(facts: Facts, out: str | Path) -> Path:
    """Write `<out>/report.html` showing `facts`; returns its path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PAGE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(facts), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a page
    return path
