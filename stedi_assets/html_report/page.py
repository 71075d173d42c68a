"""The report as one self-contained HTML page: inline CSS and SVG, no script, every text escaped.

Every figure is also in a data-* attribute of the element that shows it (data-rows, data-count, data-status,
with data-table/data-run/data-reason saying what it counts), so tests and scripts read the page unambiguously.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from ..zones import TABLES
from ..zones import table as table_spec
from .facts import FUNNELS, MASKED, STATUSES, CheckResult, Exclusion, Facts, Sample, View, tally
from .svg import Bar, attributes, bar_chart

COLORS = {"strict": "#2563eb", "rubric": "#d97706"}
OTHER_COLOR = "#6b7280"
REJECTED_COLOR = "#7c3aed"
TOP_REASONS = 8  # bars per source in the quarantine's chart; the rest are folded into one
REASON_LABEL = 480  # px: quarantine reasons are long
STATUS_CLASS = {"PASS": "pass", "FAIL": "fail", "WARN": "warn", "NOT RUN": "notrun"}

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #111827; margin: 24px 32px; max-width: 1280px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; border-bottom: 1px solid #e5e7eb; }
h3 { font-size: 15px; margin: 20px 0 6px; } p.meta { color: #4b5563; margin: 2px 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #e5e7eb; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.null { color: #9ca3af; font-style: italic; } td.masked { color: #6b7280; background: #f3f4f6; }
td.null, td.masked, td.num, th { white-space: nowrap; }
th.pii::after { content: " (pii)"; color: #b91c1c; font-weight: normal; }
.chart text { font: 12px system-ui, sans-serif; fill: #111827; } .chart text.figure { fill: #374151; }
.legend span { display: inline-block; margin-right: 16px; } .legend i { display: inline-block; width: 12px;
  height: 12px; margin-right: 4px; vertical-align: -1px; border-radius: 2px; }
.status { font-weight: 600; padding: 0 6px; border-radius: 3px; }
.pass { color: #166534; background: #dcfce7; } .fail { color: #991b1b; background: #fee2e2; }
.warn { color: #92400e; background: #fef3c7; } .notrun { color: #374151; background: #e5e7eb; }
.samples table { width: max-content; } .samples td { max-width: 320px; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
"""


def color(policy: str) -> str:
    return COLORS.get(policy, OTHER_COLOR)


def _of(view: View) -> dict[str, str | int]:
    """The data-* attributes that say which view a figure belongs to."""
    return {"policy": view.policy, "run": view.run_id or "current"}


def _legend(views: list[View]) -> str:
    items = "".join(f'<span><i style="background:{color(v.policy)}"></i>{escape(v.label)}</span>' for v in views)
    return f'<p class="legend">{items}</p>'


def _funnels(facts: Facts) -> str:
    parts = ["<h2>Rows per zone</h2>", _legend(facts.views)]
    for kind, tables in FUNNELS:
        bars = []
        for table in tables:
            name, first = table_spec(table).qualified_name, True  # the name labels its first bar only
            for view in facts.views:
                rows = view.rows(table)
                if rows is None:
                    continue
                text = f"{rows:,} rows ({view.policy})"
                data = {"table": name, **_of(view), "rows": rows}
                bars.append(Bar(name if first else "", rows, text, color(view.policy), data))
                first = False
        scale = max((b.length for b in bars), default=0)
        parts += [f"<h3>{escape(kind)}: landing → trusted → curated</h3>", bar_chart(f"{kind} per zone", bars, scale)]
    return "\n".join(parts) + _row_table(facts)


def _row_table(facts: Facts) -> str:
    """Every table's rows in each view shown, the quarantine included: the funnel's figures as numbers."""
    names = [t.name for t in TABLES if any(t.name in v.snapshots for v in facts.views)]
    head = "".join(f"<th>{escape(v.label)}</th>" for v in facts.views)
    body = []
    for name in names:
        qualified = table_spec(name).qualified_name
        cells = []
        for view in facts.views:
            rows = view.rows(name)
            data = {"table": qualified, **_of(view), "rows": rows or 0}
            cells.append("<td></td>" if rows is None else f'<td class="num"{attributes(data)}>{rows:,}</td>')
        body.append(f"<tr><td>{escape(qualified)}</td>{''.join(cells)}</tr>")
    return f'<table class="rows"><tr><th>table</th>{head}</tr>{"".join(body)}</table>'


def _exclusion_bar(view: View, e: Exclusion) -> Bar:
    share = e.count / e.population if e.population else 0.0
    text = f"{e.count:,} of {e.population:,} {e.unit}" + (f" ({100 * share:.1f}%)" if e.population else "")
    data = {"reason": e.reason, **_of(view), "count": e.count, "population": e.population}
    return Bar(e.label, share, text, color(view.policy), data)


def _exclusions(facts: Facts) -> str:
    parts = [
        "<h2>Who the rules kept out</h2>",
        "<p>Each bar is the share of a landing population that a rule kept out of trusted and curated.</p>",
    ]
    for view in facts.views:
        bars = [_exclusion_bar(view, e) for e in facts.exclusions[view.label]]
        parts += [f"<h3>{escape(view.label)}</h3>", bar_chart(f"exclusions, {view.label}", bars, 1.0)]
    parts.append(
        f'<p>People in the erasure register: <span data-erased-people="{facts.erased_people}">'
        f"{facts.erased_people:,}</span> (their data is gone from every table and snapshot; lines re-delivered "
        "for them are dropped at landing as <em>person erased</em>).</p>"
    )
    return "\n".join(parts)


def _rejections(facts: Facts) -> str:
    """One chart per landing source: its most frequent kinds of reason, the rest folded into one bar."""
    total = sum(r.count for r in facts.rejections)
    parts = [
        "<h2>Rejected landing lines by reason</h2>",
        f"<p>The quarantine (landing.rejected) of {escape(facts.views[0].label)}: "
        f'<span data-rejected-total="{total}">{total:,}</span> lines, by kind of reason (quoted values shown as …; '
        "<code>stedi query</code> on landing.rejected lists every line).</p>",
    ]
    for source in sorted({r.source for r in facts.rejections}):
        found = [r for r in facts.rejections if r.source == source]  # largest first
        shown = [(r.reason, r.count) for r in found[:TOP_REASONS]]
        rest = found[TOP_REASONS:]
        if rest:
            shown.append((f"{len(rest)} other kinds of reason", sum(r.count for r in rest)))
        bars = [
            Bar(
                reason,
                count,
                f"{count:,}",
                OTHER_COLOR if i == TOP_REASONS else REJECTED_COLOR,  # the folded rest in grey
                {"source": source, "reason": reason, "count": count},
            )
            for i, (reason, count) in enumerate(shown)
        ]
        lines = sum(r.count for r in found)
        parts += [
            f"<h3>{escape(source)}: "
            f"<span{attributes({'rejected-source': source, 'count': lines})}>{lines:,}</span> lines</h3>",
            bar_chart(f"rejected {source} lines by reason", bars, max(c for _, c in shown), REASON_LABEL),
        ]
    if not facts.rejections:
        parts.append("<p>No line was rejected.</p>")
    return "\n".join(parts)


def _checks(facts: Facts) -> str:
    checks: list[CheckResult] = facts.checks
    summary = ", ".join(
        f"<span{attributes({'status-count': s, 'count': n})}>{n} {STATUSES[s]}</span>" for s, n in tally(checks).items()
    )
    rows = "".join(
        f"<tr{attributes({'table': c.table, 'check': c.check, 'status': c.status})}>"
        f"<td>{escape(c.table)}</td><td>{escape(c.check)}</td><td>{'blocking' if c.blocking else 'warns only'}</td>"
        f'<td><span class="status {STATUS_CLASS[c.status]}">{escape(c.status)}</span></td>'
        f"<td>{escape(c.detail)}</td></tr>"
        for c in checks
    )
    return (
        "<h2>Checks</h2>"
        f"<p>Every check of every table, run by this report on the snapshots of {escape(facts.views[0].label)} "
        f"(read-only, as <code>stedi check</code> runs them): {len(checks)} checks, {summary}.</p>"
        f'<table class="checks"><tr><th>table</th><th>check</th><th>kind</th><th>result</th><th>detail</th></tr>'
        f"{rows}</table>"
    )


def _cell(value) -> str:
    if value is None:
        return '<td class="null">null</td>'
    if value is MASKED:
        return '<td class="masked">masked</td>'
    return f"<td>{escape(str(value))}</td>"


def _sample(sample: Sample) -> str:
    head = "".join(f"<th{' class=pii' if c in sample.masked else ''}>{escape(c)}</th>" for c in sample.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in sample.rows)
    return (
        f"<h3>{escape(sample.table)}</h3>"
        f"<p>{len(sample.rows)} of {sample.total:,} rows.</p>"
        f'<div class="scroll"><table class="sample"{attributes({"table": sample.table, "rows": sample.total})}>'
        f"<tr>{head}</tr>{body}</table></div>"
    )


def _samples(facts: Facts) -> str:
    return (
        '<section class="samples"><h2>A sample of each table</h2>'
        "<p>Values of columns tagged <code>pii</code> in the contract (and raw landing lines) are masked.</p>"
        + "".join(_sample(s) for s in facts.samples)
        + "</section>"
    )


def render(facts: Facts, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    main = facts.views[0]
    others = ", ".join(escape(v.label) for v in facts.views[1:])
    return "\n".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            "<title>STEDI lake report</title>",
            f"<style>{CSS}</style></head><body>",
            "<h1>STEDI lake report</h1>",
            f'<p class="meta">Lake <code>{escape(facts.lake)}</code>; the lake of '
            f"<strong{attributes(_of(main))}>{escape(main.label)}</strong>"
            + (f", beside the latest complete run of each other policy: {others}" if others else "")
            + ".</p>",
            f'<p class="meta">Written {escape(now.isoformat(timespec="seconds"))} by <code>stedi report</code>.</p>',
            _funnels(facts),
            _exclusions(facts),
            _rejections(facts),
            _checks(facts),
            _samples(facts),
            "</body></html>",
        ]
    )
