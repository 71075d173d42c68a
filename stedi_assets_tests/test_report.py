"""`stedi report`: one HTML page about the lake, checked as its reader would check it.

The lake (conftest.two_policy_lake) holds a rubric run and a later strict run, with one erased customer whose
lines were delivered again. Every figure the page shows is in a data-* attribute of the element that shows
it; the tests compare those figures with what `stedi query`, `stedi audit` and `stedi check` say about the
same lake, and grep the page for every customer's personal data. The browser test (ui tier) renders the page
in Debian's chromium, reads the figures from the DOM and saves a PNG in $STEDI_TEST_ARTIFACTS/report/.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stedi_assets.cli import main
from stedi_assets.html_report.facts import MASKED, CheckResult, Exclusion, Facts, Rejection, Sample, View
from stedi_assets.html_report.page import render
from stedi_assets.storage.lake import Snapshot, open_lake
from stedi_assets.storage.runs import complete_runs, view_of_run
from stedi_assets_tests.conftest import REPO, landing_records, restored_afterwards


def stedi(*argv: str) -> str:
    """Run a `stedi` command in this process; its stdout (it must succeed)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    assert code == 0, f"stedi {' '.join(argv)} exited {code}:\n{out.getvalue()}"
    return out.getvalue()


def query(lake: Path, sql: str, as_of: str | None = None) -> list[dict]:
    return json.loads(
        stedi("query", "--lake", str(lake), "--format", "json", *(["--as-of", as_of] if as_of else []), sql)
    )


def printed_table(text: str) -> list[dict[str, str]]:
    """The rows of a table `stedi` printed (header, dashes, rows), by the dashes' column spans."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("-") and set(line) <= {"-", " "})
    spans = [m.span() for m in re.finditer(r"-+", lines[at])]
    names = [lines[at - 1][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[at + 1 :]:
        if not line.strip():
            break
        rows.append({n: line[a:b].strip() for n, (a, b) in zip(names, spans, strict=True)})
    return rows


class DataElements(HTMLParser):
    """Every element of the page that carries data-* attributes: (tag, {name without data-: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs) -> None:
        data = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}
        if data:
            self.found.append((tag, data))

    def select(self, tag: str, *keys: str) -> list[dict[str, str]]:
        return [d for t, d in self.found if t == tag and all(k in d for k in keys)]


@pytest.fixture(scope="module")
def runs(two_policy_lake) -> dict[str, str]:
    """policy -> its complete run (the strict one is the latest)."""
    lake = open_lake(str(two_policy_lake / "lake"))
    found = {view_of_run(lake, run)["customer_trusted"].policy: run for _, run in reversed(complete_runs(lake))}
    assert set(found) == {"strict", "rubric"}
    return found


@pytest.fixture(scope="module")
def report(two_policy_lake, tmp_path_factory) -> tuple[Path, str, str]:
    """(report.html, its text, what `stedi report` printed)."""
    out = tmp_path_factory.mktemp("report") / "out"
    printed = stedi("report", "--lake", str(two_policy_lake / "lake"), "--out", str(out))
    page = out / "report.html"
    return page, page.read_text(encoding="utf-8"), printed


@pytest.fixture(scope="module")
def elements(report) -> DataElements:
    parser = DataElements()
    parser.feed(report[1])
    return parser


TABLES = (
    "landing.customer_landing",
    "landing.accelerometer_landing",
    "landing.step_trainer_landing",
    "landing.rejected",
    "trusted.customer_trusted",
    "trusted.accelerometer_trusted",
    "trusted.step_trainer_trusted",
    "curated.customer_curated",
    "curated.machine_learning_curated",
)


@pytest.fixture(scope="module")
def counts(two_policy_lake, runs) -> dict[tuple[str, str], int]:
    """(run, table) -> count(*) as `stedi query --as-of RUN` reads it."""
    sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES)
    return {(run, row["t"]): row["n"] for run in runs.values() for row in query(two_policy_lake / "lake", sql, run)}


# ----------------------------------------------------------------------------------------- fast tier


def test_report_command_names_the_page_and_the_checks_tally(report, runs):
    page, _, printed = report
    assert printed.strip() == (
        f"report of strict, run {runs['strict'][:8]} written to {page} "
        "(49 checks: 48 passed, 0 failed, 1 warned, 0 not run)"
    )


def test_page_is_self_contained(report):
    text = report[1]
    assert text.startswith("<!DOCTYPE html>") and text.count("<svg ") >= 3
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page loads nothing from elsewhere"


# Words the page writes itself (an empty cell shows "null"), which the generator also uses as a defective value.
PAGE_WORDS = {"null", "masked"}


def test_page_holds_no_personal_data(report, two_policy_lake):
    """No e-mail, name, phone, birthday or serial of any customer or device, nor any quarantined raw line."""
    text = report[1].lower()
    landing = two_policy_lake / "landing"
    personal = {
        str(r[field]).strip().lower()
        for source, fields in {
            "customer": ("email", "customerName", "phone", "birthDay", "serialNumber"),
            "accelerometer": ("user",),
            "step_trainer": ("serialNumber",),
        }.items()
        for r in landing_records(landing, source)
        for field in fields
        if isinstance(r.get(field), str) and len(r[field].strip()) >= 5
    } - PAGE_WORDS
    assert len(personal) > 100  # the grep below is only as good as this list
    # quarantined lines long enough to name someone (a line `null` or `[1, 2]` names nobody)
    raws = {
        r["raw"] for r in query(two_policy_lake / "lake", "SELECT raw FROM landing.rejected WHERE length(raw) >= 20")
    }
    assert len(raws) > 10
    leaked = sorted(p for p in personal if p in text) + sorted(r[:40] for r in raws if r.lower()[:40] in text)
    assert not leaked, f"personal data in the report: {len(leaked)} values"
    assert text.count(">masked<") > 10  # the samples show pii columns, masked


def test_funnel_figures_are_stedi_query_counts_for_each_policy(elements, counts, runs):
    bars = elements.select("g", "table", "run", "rows")
    cells = elements.select("td", "table", "run", "rows")
    assert {b["policy"] for b in bars} == {"strict", "rubric"}
    for found in (bars, cells):
        assert found
        wrong = {(f["run"][:8], f["table"]): (f["rows"], counts[f["run"], f["table"]]) for f in found}
        wrong = {k: v for k, v in wrong.items() if int(v[0]) != v[1]}
        assert not wrong, f"(run, table): (shown, stedi query) {wrong}"
    assert {(c["run"], c["table"]) for c in cells} == set(counts)  # every table of both runs, quarantine included


def test_exclusions_are_what_stedi_query_and_stedi_audit_count(elements, two_policy_lake, runs):
    lake = two_policy_lake / "lake"
    shown = {(e["run"], e["reason"]): e for e in elements.select("g", "reason", "population")}
    for policy, run in runs.items():
        (q,) = query(
            lake,
            """SELECT
              (SELECT count(DISTINCT lower(trim(BOTH ' ' FROM email))) FROM landing.customer_landing) AS customers,
              (SELECT count(DISTINCT lower(trim(BOTH ' ' FROM email))) FROM trusted.customer_trusted) AS consenting,
              (SELECT count(*) FROM landing.rejected WHERE reason = 'erased') AS erased,
              (SELECT count(*) FROM landing.rejected) AS rejected,
              (SELECT count(*) FROM landing.customer_landing) + (SELECT count(*) FROM landing.accelerometer_landing)
                + (SELECT count(*) FROM landing.step_trainer_landing) AS valid,
              (SELECT count(*) FROM landing.accelerometer_landing a JOIN trusted.customer_trusted c
                 ON lower(trim(BOTH ' ' FROM a.user)) = lower(trim(BOTH ' ' FROM c.email))
                 WHERE a.timestamp < c.shareWithResearchAsOfDate) AS before_consent""",
            run,
        )
        lines = q["valid"] + q["rejected"]
        expected = {
            "no_consent": (q["customers"] - q["consenting"], q["customers"]),
            "erased": (q["erased"], lines),
            "rejected": (q["rejected"] - q["erased"], lines),
        }
        if policy == "strict":
            expected["before_consent"] = (q["before_consent"], None)
        for reason, (count, population) in expected.items():
            bar = shown[run, reason]
            assert int(bar["count"]) == count, (policy, reason)
            assert population is None or int(bar["population"]) == population, (policy, reason)
        assert q["erased"] > 0  # the erased customer's lines, delivered again, were dropped at landing
    assert (runs["rubric"], "before_consent") not in shown  # the rubric has no consent date rule

    # The latest run's figures are `stedi audit`'s (which reads the same lake).
    audit = {r["table"]: r for r in printed_table(stedi("audit", "--lake", str(lake)))}
    strict = runs["strict"]
    assert shown[strict, "no_consent"]["count"] == audit["trusted.customer_trusted"]["excluded: no consent"]
    assert shown[strict, "before_consent"]["count"] == audit["trusted.accelerometer_trusted"]["readings before consent"]
    assert shown[strict, "ambiguous_serial"]["count"] == audit["trusted.step_trainer_trusted"]["ambiguous readings"]
    register = audit["(erasure register)"]
    assert shown[strict, "erased"]["count"] == register["dropped at landing: erased"]
    (erased_people,) = elements.select("span", "erased-people")
    assert register["covers"] == f"{erased_people['erased-people']} people erased" == "1 people erased"


def test_quarantine_by_reason_adds_up_to_stedi_query(elements, two_policy_lake):
    lake = two_policy_lake / "lake"
    by_source = {
        r["source"]: r["n"] for r in query(lake, "SELECT source, count(*) AS n FROM landing.rejected GROUP BY 1")
    }
    bars = elements.select("g", "source", "reason", "count")
    assert {s: sum(int(b["count"]) for b in bars if b["source"] == s) for s in by_source} == by_source
    headings = {h["rejected-source"]: int(h["count"]) for h in elements.select("span", "rejected-source", "count")}
    assert headings == by_source
    (total,) = elements.select("span", "rejected-total")
    assert int(total["rejected-total"]) == sum(by_source.values())
    erased = query(lake, "SELECT source, count(*) AS n FROM landing.rejected WHERE reason = 'erased' GROUP BY 1")
    assert {r["source"]: r["n"] for r in erased} == {
        b["source"]: int(b["count"]) for b in bars if b["reason"] == "erased"
    }


def test_every_check_shows_the_result_stedi_check_gives(elements, two_policy_lake):
    checked = stedi("check", "--lake", str(two_policy_lake / "lake"))
    by_cli = {(r["table"], r["check"]): r["result"] for r in printed_table(checked)}
    shown = {(r["table"], r["check"]): r["status"] for r in elements.select("tr", "table", "check", "status")}
    assert shown == by_cli
    assert sorted(set(shown.values())) == ["PASS", "WARN"]  # ambiguous_readings warns: duplicate serials


def test_each_table_has_a_sample(elements, counts, runs):
    samples = {s["table"]: int(s["rows"]) for s in elements.select("table", "table", "rows")}
    assert samples == {t: counts[runs["strict"], t] for t in TABLES}


def test_report_errors_are_one_line(two_policy_lake, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["report", "--lake", str(two_policy_lake / "lake"), "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.strip() == f"stedi: error: --out {tmp_path / 'file'} is a file, not a folder"
    below = tmp_path / "file" / "report"
    assert main(["report", "--lake", str(two_policy_lake / "lake"), "--out", str(below)]) == 2
    assert capsys.readouterr().err.strip() == f"stedi: error: --out {below}: cannot write the report (Not a directory)"
    assert main(["report", "--lake", str(tmp_path / "nolake"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no committed tables" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_checks_that_cannot_run_say_why_and_the_report_generates_no_key(two_policy_lake, tmp_path, monkeypatch, capsys):
    """The report only reads: without the pseudonym key the strict ML table's checks are NOT RUN (it needs the
    key to recompute pseudonyms), with the reason; every other check still runs, and no key is made."""
    monkeypatch.delenv("STEDI_PSEUDONYM_KEY", raising=False)
    lake = two_policy_lake / "lake"
    key = lake / "_private" / "pseudonym_key"
    with restored_afterwards(two_policy_lake):
        key.unlink()
        assert main(["report", "--lake", str(lake), "--out", str(tmp_path)]) == 0
        assert not key.exists()
    assert "(49 checks: 42 passed, 0 failed, 1 warned, 6 not run)" in capsys.readouterr().out
    parser = DataElements()
    parser.feed((tmp_path / "report.html").read_text(encoding="utf-8"))
    not_run = {r["table"] for r in parser.select("tr", "table", "check", "status") if r["status"] == "NOT RUN"}
    assert not_run == {"curated.machine_learning_curated"}
    reason = f"STEDI_PSEUDONYM_KEY is not set and lake {lake} has no generated pseudonym key"
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count(reason) == 6


def test_everything_on_the_page_is_escaped():
    """Text from the lake (paths, reasons, check details, sample values) can hold markup: it is shown, not run."""
    evil = '<script>alert("x")</script>'
    snap = Snapshot("landing", "rejected", "1", "", {"data": []}, rows={"data": 1}, policy=None)
    view = View(None, "strict", {"rejected": snap})
    facts = Facts(
        lake=f"/lakes/{evil}",
        views=[view],
        exclusions={view.label: [Exclusion("rejected", evil, 1, 2, evil)]},
        erased_people=0,
        rejections=[Rejection(evil, evil, 1)],
        checks=[CheckResult(f"landing.{evil}", evil, True, "FAIL", evil)],
        samples=[Sample("landing.rejected", [evil, "raw"], frozenset({"raw"}), [[evil, MASKED]], 1)],
    )
    text = render(facts)
    assert "<script" not in text and "&lt;script&gt;" in text
    assert text.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 8


# ----------------------------------------------------------------------------------------- ui tier


@pytest.mark.ui
def test_report_in_chromium_shows_the_stedi_query_counts(report, counts, runs):
    """Debian's chromium renders the page (nothing fetched from elsewhere); what it shows is what `stedi query`
    counts; a full-page PNG is kept in $STEDI_TEST_ARTIFACTS/report/."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    from stedi_assets_tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (never `playwright install`)")

    base = os.environ.get("STEDI_TEST_ARTIFACTS")
    folder = (Path(base) if base else REPO / "test-artifacts") / "report"
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report.png"
    shot.unlink(missing_ok=True)
    page_file = report[0]
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            page.screenshot(path=str(shot), full_page=True)
            bars = page.eval_on_selector_all(
                "svg g.bar[data-rows]",
                """els => els.map(e => ({...e.dataset, figure: e.querySelector('text.figure').textContent,
                                           width: e.querySelector('rect').getBoundingClientRect().width,
                                           chart: e.closest('svg').querySelector('title').textContent}))""",
            )
            cells = page.eval_on_selector_all(
                "td[data-rows]", "els => els.map(e => ({...e.dataset, text: e.innerText}))"
            )
            statuses = page.eval_on_selector_all("tr[data-status] .status", "els => els.map(e => e.innerText)")
        finally:
            browser.close()

    assert requests == [page_file.as_uri()], f"the page fetched {requests}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    assert len(bars) == 3 * 3 * len(runs)  # three funnels of three tables, a bar per policy
    for bar in bars:
        rows = counts[bar["run"], bar["table"]]
        assert bar["figure"] == f"{rows:,} rows ({bar['policy']})", bar
    for chart in {b["chart"] for b in bars}:  # longer bar, more rows
        drawn = sorted((b["width"], counts[b["run"], b["table"]]) for b in bars if b["chart"] == chart)
        assert [n for _, n in drawn] == sorted(n for _, n in drawn), chart
        assert drawn[0][0] > 0
    assert {(c["run"], c["table"]): int(c["text"].replace(",", "")) for c in cells} == counts
    assert len(statuses) == 49 and set(statuses) == {"PASS", "WARN"}
