"""The lakehouse in a real browser, used as a person uses it: `dagster dev` (dev_server.py) over a small
generated landing with every kind of defect, Debian's chromium driven by Playwright.

The person dismisses Dagster's first-visit pop-up, finds the three zone groups with their tables and the
quarantine on the Lineage page, presses "Materialize all", follows the toast to the run, waits for it to show
Success, and opens every table's Checks tab to see each blocking check passed in that run. What the page
shows is cross-checked with the check evaluations the instance recorded.

Screenshots (PNG) of each step go to $STEDI_TEST_ARTIFACTS/ui/ (default <repo>/test-artifacts/ui/, git-ignored);
the folder is printed when the module starts, and a FAILED-*.png shows the page a failing step was on.
Chromium is Debian's (`apt-get install chromium`); `playwright install` is never needed.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
from dev_server import LOCATION, REPO, ZONE_TABLES, Server, run_errors, start_dagster_dev

from stedi_assets import cli

CHROMIUM = "/usr/bin/chromium"
# No sandbox (we run as root in CI), no GPU, and nothing that reaches for the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1600, "height": 1000}
ACTION_TIMEOUT_MS = 60_000  # a click or a wait for an element: pages load slowly on a busy 2-core machine
POPUP_TIMEOUT_MS = 30_000  # the first-visit pop-up shows once the UI has asked the instance about it
RUN_TIMEOUT = 600  # s for "Materialize all" (9 assets, one subprocess per step) to finish
PAGE_SETTLE = 20  # s for a page's lists to reach what they will show

ALL_TABLES = {table for tables in ZONE_TABLES.values() for table in tables}
TABLE_COUNT = len(ALL_TABLES)
TERMINAL_STATUS = re.compile(r"^(Success|Failure|Canceled)$")
RUN_PATH = re.compile(r"/runs/([0-9a-f-]{36})")


def _run_id_in(url: str | None) -> str:
    found = RUN_PATH.search(url or "")
    return found.group(1) if found else ""


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """50 customers with every defect the generator knows: quarantined lines, revocations, duplicate serials."""
    out = tmp_path_factory.mktemp("ui_landing") / "landing"
    assert cli.main(["generate", str(out), "--customers", "50", "--defects", "all"]) == 0
    return out


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, landing) -> Server:
    return start_dagster_dev(request, tmp_path_factory.mktemp("dagster_dev"), landing)


class Shots:
    """Numbered screenshots in the artifact folder, in the order a person saw the pages."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0

    def take(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path))
        return path

    @contextmanager
    def on_failure(self, page, name: str):
        """Keep a picture of the page a step failed on, then let the failure through."""
        try:
            yield
        except BaseException:
            from playwright.sync_api import Error as PlaywrightError

            try:
                self.take(page, f"FAILED-{name}")
            except PlaywrightError:  # a dead browser must not hide the real failure
                pass
            raise


@pytest.fixture(scope="module")
def shots(request) -> Shots:
    base = os.environ.get("STEDI_TEST_ARTIFACTS")
    folder = (Path(base) if base else REPO / "test-artifacts") / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # pictures of an earlier run would be mistaken for this one's
        old.unlink()
    # Printed past pytest's capture (as capsys.disabled() does) so a passing run names the folder too.
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        print(f"\nUI screenshots: {folder}")
    return Shots(folder)


@pytest.fixture(scope="module")
def page(server, shots):
    """One chromium page on the UI for the whole module (its state is the person's session)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport=VIEWPORT)
            tab.set_default_timeout(ACTION_TIMEOUT_MS)
            with shots.on_failure(tab, "first-visit"):
                tab.goto(server.base_url)
                _dismiss_first_visit_popup(tab, shots)
            yield tab
        finally:
            browser.close()


def _dismiss_first_visit_popup(page, shots: Shots) -> None:
    """A new instance greets its first visitor with a "Join the Dagster community" dialog over the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    popup = page.get_by_text("Join the Dagster community")
    try:
        popup.wait_for(timeout=POPUP_TIMEOUT_MS)
    except PlaywrightTimeout:
        return  # already seen on this instance: nothing in the way
    shots.take(page, "first-visit-popup")
    page.get_by_role("button", name="Skip", exact=True).click()
    popup.wait_for(state="hidden")


# --------------------------------------------------------------------------------------------- helpers


def _eventually(read, expected, timeout: float = PAGE_SETTLE, interval: float = 0.5):
    """Read the page until it shows `expected` or `timeout` passes; returns the last reading."""
    deadline = time.monotonic() + timeout
    seen = read()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(interval)
        seen = read()
    return seen


def _open(page, nav_href: str) -> None:
    """Click an entry of the left navigation (Overview, Runs, Catalog, Lineage ...)."""
    page.locator(f"a[href='{nav_href}']").first.click()  # the navigation comes first on every page


def _sidebar_tree(page) -> dict[str, list[str]]:
    """The Lineage page's sidebar as the person reads it: each group, then the assets indented under it."""
    tree: dict[str, list[str]] = {}
    group = None
    rows = page.locator("[data-index]")
    for i in range(rows.count()):
        row = rows.nth(i)
        title = row.locator("[title]").first.get_attribute("title")
        if row.get_by_role("img", name="asset_group").count():
            group = title
            tree[group] = []
        elif group is not None:
            tree[group].append(title)
    return {g: sorted(tables) for g, tables in tree.items()}


# --------------------------------------------------------------------------------------------- tests


def test_lineage_shows_each_zone_group_with_its_tables_and_the_quarantine(page, shots):
    expected = {zone: sorted(tables) for zone, tables in ZONE_TABLES.items()}
    with shots.on_failure(page, "lineage-groups"):
        _open(page, "/asset-groups")
        page.get_by_role("button", name="Materialize all").wait_for()
        collapsed = _eventually(lambda: sorted(_sidebar_tree(page)), sorted(expected))
        assert collapsed == sorted(expected), f"Lineage sidebar shows groups {collapsed}"
        for zone in expected:  # unfold each group as a person would, by its arrow
            row = page.locator("[data-index]").filter(has=page.locator(f"[title='{zone}']"))
            row.get_by_role("img", name="arrow_drop_down").click()
        shown = _eventually(lambda: _sidebar_tree(page), expected)
        shots.take(page, "lineage-groups")
    assert shown == expected, f"Lineage sidebar groups: {shown}"


@dataclass(frozen=True)
class Run:
    id: str
    status: str  # what the run page's status tag shows once the run is over (Success, Failure ...)


@pytest.fixture(scope="module")
def run(page, server, shots) -> Run:
    """Press "Materialize all" on the Lineage page, follow the toast's View to the run, and watch its page
    until the status tag shows the run is over."""
    with shots.on_failure(page, "materialize-all"):
        _open(page, "/asset-groups")
        page.get_by_role("button", name="Materialize all").click()
        page.get_by_text(re.compile(r"^Launched run \w+$")).wait_for()
        shots.take(page, "run-launched")
        page.get_by_text("View", exact=True).click()
        page.wait_for_url(RUN_PATH)
    status = page.get_by_text(TERMINAL_STATUS)
    with shots.on_failure(page, "run"):
        deadline = time.monotonic() + RUN_TIMEOUT
        while not status.count() and time.monotonic() < deadline:
            if server.proc.poll() is not None:
                pytest.fail(f"dagster dev exited during the run:\n{server.log_tail()}")
            time.sleep(1)
        shown = status.first.inner_text() if status.count() else "(still running)"
        shots.take(page, f"run-{shown.strip('()').replace(' ', '-').lower()}")
    return Run(_run_id_in(page.url), shown)


CHECK_DEFINITIONS_QUERY = """
{ assetNodes { assetKey { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking
        executionForLatestMaterialization { runId status evaluation { success } } } } } } }
"""


def _defined_checks(server: Server) -> dict[tuple[str, str], dict]:
    """Every check of every table as the instance knows it: blocking or not, and its latest evaluation."""
    nodes = server.graphql(CHECK_DEFINITIONS_QUERY)["assetNodes"]
    return {
        (node["assetKey"]["path"][-1], check["name"]): check
        for node in nodes
        for check in (node["assetChecksOrError"] or {}).get("checks", [])
    }


def _passed_in(execution: dict | None, run_id: str) -> bool:
    """Whether an evaluation the instance recorded is a pass in run `run_id`."""
    if not execution:
        return False
    evaluation = execution["evaluation"] or {}
    return (execution["runId"], execution["status"], evaluation.get("success")) == (run_id, "SUCCEEDED", True)


def test_materialize_all_from_the_ui_shows_success(page, server, run, shots):
    assert run.status == "Success", (
        f"run {run.id} shows {run.status}:\n{run_errors(server, run.id)}\n{server.log_tail()}"
    )
    with shots.on_failure(page, "run"):
        # The run covered every table and every check, and each step shows as succeeded.
        checks = len(_defined_checks(server))
        page.get_by_text(f"{TABLE_COUNT} assets", exact=True).wait_for()
        page.get_by_text(f"{checks} checks", exact=True).wait_for()
        page.get_by_text(f"Succeeded ({TABLE_COUNT})", exact=True).wait_for()
    for zone in ZONE_TABLES:  # each group's lineage after the run, for whoever reads the artifacts
        with shots.on_failure(page, f"group-{zone}"):
            page.goto(f"{server.base_url}/locations/{LOCATION}/asset-groups/{zone}")
            page.get_by_text("Materialized", exact=True).first.wait_for()
            shots.take(page, f"group-{zone}")


@dataclass(frozen=True)
class CheckOnPage:
    listed: str  # the status under the check's name in the Checks list (Succeeded, Failed ...)
    blocking: bool  # the detail says "This is a blocking asset check."
    result: str  # the detail's Latest execution > Evaluation result (Passed, Failed ...)
    run_id: str  # the run its Latest execution links to ("" when it has not run)


def _under(page, label: str):
    """The value shown under a label of the check detail (Evaluation result, Timestamp ...)."""
    return page.get_by_text(label, exact=True).locator("xpath=following-sibling::*[1]")


def _checks_tab(page) -> dict[str, CheckOnPage]:
    """Click through the Checks tab of the open asset page: every check's listed status and its detail."""
    count = int(re.sub(r"\D", "", page.get_by_text(re.compile(r"^Checks \(\d+\)$")).inner_text()))
    rows = page.locator("[class*=AssetChecks_checkRow]")
    assert _eventually(rows.count, count) == count, f"the Checks tab lists {rows.count()} checks, its title {count}"
    checks = {}
    for i in range(count):
        row = rows.nth(i)
        name = row.locator("[title]").first.get_attribute("title") or ""
        row.click()
        page.locator("[aria-label=asset_check] + span", has_text=re.compile(f"^{re.escape(name)}$")).wait_for()
        result = _under(page, "Evaluation result")  # always shown; a Timestamp only once the check has run
        result.wait_for()
        timestamp = _under(page, "Timestamp")
        checks[name] = CheckOnPage(
            listed=row.inner_text().splitlines()[-1].strip(),
            blocking=page.get_by_text("This is a blocking asset check").count() > 0,
            result=result.inner_text().strip(),
            run_id=_run_id_in(timestamp.get_attribute("href")) if timestamp.count() else "",
        )
    return checks


def test_every_blocking_check_shows_passed_in_that_run(page, server, run, shots):
    on_page: dict[tuple[str, str], CheckOnPage] = {}
    for zone, tables in ZONE_TABLES.items():
        for table in tables:
            with shots.on_failure(page, f"checks-{table}"):
                _open(page, "/assets")
                page.locator(f"a[href='/assets/{zone}/{table}']").first.click()
                page.get_by_role("tab", name="Checks").click()
                on_page.update({(table, name): check for name, check in _checks_tab(page).items()})
                shots.take(page, f"checks-{zone}-{table}")

    defined = _defined_checks(server)
    assert set(on_page) == set(defined), (
        f"checks on the page but not defined: {sorted(set(on_page) - set(defined))}; "
        f"defined but not on the page: {sorted(set(defined) - set(on_page))}"
    )
    wrong_flag = sorted(k for k, c in on_page.items() if c.blocking != defined[k]["blocking"])
    assert not wrong_flag, f"the page shows the wrong blocking flag for {wrong_flag}"

    blocking = sorted(k for k, c in on_page.items() if c.blocking)
    ungated = ALL_TABLES - {table for table, _ in blocking}
    assert not ungated, f"tables without a blocking check: {sorted(ungated)}"
    not_passed = {
        f"{t}/{c}": on_page[t, c]
        for t, c in blocking
        if (on_page[t, c].listed, on_page[t, c].result, on_page[t, c].run_id) != ("Succeeded", "Passed", run.id)
    }
    assert not not_passed, f"blocking checks not shown as passed in run {run.id}: {not_passed}"

    # The instance recorded the same: each blocking check passed for the materialization of this run.
    recorded = {f"{t}/{c}": defined[t, c]["executionForLatestMaterialization"] for t, c in blocking}
    disagree = {k: e for k, e in recorded.items() if not _passed_in(e, run.id)}
    assert not disagree, f"the instance's evaluations disagree with the page: {disagree}"
