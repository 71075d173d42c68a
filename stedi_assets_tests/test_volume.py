"""The blocking `volume` check (issue 10.7): a table never silently shrinks, a landing file never silently
loses lines. A write that loses more than STEDI_MAX_SHRINK of the published rows, or a landing source whose
files are all gone, is not committed (the published snapshot stays current) unless the run allows it
(`stedi run --allow-shrink`, or `allow_shrink` in the volume resource's config); a landing file that got
shorter since it was last read is reported with a WARN.
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.cli import main
from stedi_assets.resources import local_resources
from stedi_assets.storage.lake import open_lake
from stedi_assets_tests.conftest import checks_of, write_landing
from stedi_assets_tests.small_landing import accel, write_good_landing


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "volume-test-key")
    monkeypatch.delenv("STEDI_MAX_SHRINK", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def run(capsys, landing, lake, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["run", "--landing", str(landing), "--lake", str(lake), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def count(capsys, lake, table: str, *extra: str) -> int:
    capsys.readouterr()
    assert main(["query", "--lake", str(lake), "--format", "json", *extra, f"SELECT count(*) AS n FROM {table}"]) == 0
    return json.loads(capsys.readouterr().out)[0]["n"]


def check_line(output: str, table: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(table) and " volume " in line)


def publish(tmp_path, capsys, *extra: str):
    """A landing folder and the lake one run published from it."""
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_good_landing(landing)
    code, output = run(capsys, landing, lake, *extra)
    assert code == 0, output
    return landing, lake


@pytest.fixture
def published(tmp_path, capsys):
    return publish(tmp_path, capsys)


@pytest.fixture
def landing_published(tmp_path, capsys):
    return publish(tmp_path, capsys, "--select", "group:landing")


def test_a_missing_source_folder_blocks_publishing_and_the_published_tables_stay(published, capsys):
    landing, lake = published
    snapshot = open_lake(str(lake)).current("landing", "accelerometer_landing").snapshot
    shutil.rmtree(landing / "accelerometer")

    code, output = run(capsys, landing, lake)
    assert code == 1, output
    assert "FAIL" in check_line(output, "landing.accelerometer_landing")
    assert "accelerometer_landing failed" in output and "blocking check failed: volume" in output
    assert "no landing file left" in output
    assert open_lake(str(lake)).current("landing", "accelerometer_landing").snapshot == snapshot
    for table, rows in (("landing.accelerometer_landing", 3), ("curated.machine_learning_curated", 3)):
        assert count(capsys, lake, table) == rows  # the latest complete run's lake
        assert count(capsys, lake, table, "--as-of", "current") == rows  # and each table's current snapshot
    assert main(["check", "--lake", str(lake)]) == 0


def test_allow_shrink_publishes_the_shrink_and_the_check_warns(published, capsys):
    landing, lake = published
    shutil.rmtree(landing / "accelerometer")
    code, output = run(capsys, landing, lake, "--allow-shrink")
    assert code == 0, output
    assert "WARN" in check_line(output, "landing.accelerometer_landing")
    assert "WARN" in check_line(output, "curated.machine_learning_curated")
    assert count(capsys, lake, "landing.accelerometer_landing") == 0
    assert count(capsys, lake, "curated.machine_learning_curated") == 0
    capsys.readouterr()
    assert main(["check", "--lake", str(lake)]) == 0  # the shrink was allowed when it was published
    assert "WARN" in check_line(capsys.readouterr().out, "landing.accelerometer_landing")


def test_allow_shrink_in_the_run_config_as_the_launchpad_sets_it(published):
    landing, lake = published
    shutil.rmtree(landing / "step_trainer")
    resources = local_resources(landing=str(landing), lake=str(lake))
    blocked = dg.materialize(TABLE_ASSETS, resources=resources, raise_on_error=False)
    assert not blocked.success and not checks_of(blocked)[("step_trainer_landing", "volume")].passed
    allowed = dg.materialize(
        TABLE_ASSETS,
        resources=resources,
        run_config={"resources": {"volume": {"config": {"allow_shrink": True}}}},
        raise_on_error=False,
    )
    assert allowed.success
    assert checks_of(allowed)[("step_trainer_landing", "volume")].severity == dg.AssetCheckSeverity.WARN
    assert open_lake(str(lake)).current("landing", "step_trainer_landing").rows["data"] == 0


def test_a_table_may_halve_by_default_and_the_share_is_a_setting(landing_published, capsys, monkeypatch):
    landing, lake = landing_published
    write_landing(landing, "customer", [json.loads(line) for line in _lines(landing, "customer")[:1]])  # 3 -> 1
    code, output = run(capsys, landing, lake, "--select", "group:landing")
    assert code == 1 and "67% fewer rows than published (at most 50%)" in output  # unset: a table may halve
    monkeypatch.setenv("STEDI_MAX_SHRINK", "0.7")
    code, output = run(capsys, landing, lake, "--select", "group:landing")
    assert code == 0, output  # 67% fewer customer rows: within 70%
    monkeypatch.setenv("STEDI_MAX_SHRINK", "2")
    code, output = run(capsys, landing, lake)
    assert code == 2 and "STEDI_MAX_SHRINK must be a share between 0 and 1" in output


def test_a_shrink_beyond_the_setting_is_blocked(landing_published, capsys, monkeypatch):
    landing, lake = landing_published
    write_landing(landing, "customer", [json.loads(line) for line in _lines(landing, "customer")[:2]])  # 3 -> 2
    monkeypatch.setenv("STEDI_MAX_SHRINK", "0.2")
    code, output = run(capsys, landing, lake, "--select", "group:landing")
    assert code == 1 and "33% fewer rows than published (at most 20%)" in output


def test_a_landing_file_that_got_shorter_is_reported(tmp_path, capsys):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_good_landing(landing)
    write_landing(landing, "accelerometer", [accel(100 + t) for t in range(10)], name="part-2.json")
    write_landing(landing, "accelerometer", [accel(200 + t) for t in range(4)], name="part-3.json")
    assert run(capsys, landing, lake)[0] == 0
    folder = landing / "accelerometer" / "landing"
    cut, fewer = folder / "part-2.json", folder / "part-3.json"
    sizes = {p: p.stat().st_size for p in (cut, fewer)}
    cut.write_bytes(b"".join(cut.read_bytes().splitlines(keepends=True)[:7]))  # lines 8-10 cut off
    lines = fewer.read_bytes().splitlines(keepends=True)[:3]  # one line fewer, as many bytes: blanks at the end
    fewer.write_bytes(b"".join(lines) + b" " * (sizes[fewer] - sum(map(len, lines)) - 1) + b"\n")
    assert fewer.stat().st_size == sizes[fewer]

    code, output = run(capsys, landing, lake)
    assert code == 0, output  # 17 -> 13 rows: within the default 50%, so published, with a warning
    line = check_line(output, "landing.accelerometer_landing")
    assert "WARN" in line and "accelerometer/landing/part-2.json" in line
    assert _volume_check_alone(landing, lake)["shorter_files"] == [
        f"accelerometer/landing/part-2.json: {sizes[cut]:,} -> {cut.stat().st_size:,} bytes, 10 -> 7 lines ingested",
        f"accelerometer/landing/part-3.json: {sizes[fewer]:,} -> {sizes[fewer]:,} bytes, 4 -> 3 lines ingested",
    ]
    assert count(capsys, lake, "landing.accelerometer_landing") == 13


def test_a_landing_file_with_fewer_lines_and_as_many_bytes_is_reported(tmp_path, capsys):
    """No file is smaller, so only the lines ingested per file show it: the check counts them when the new
    snapshot does not keep every lake file of the published one (it counts them only then)."""
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    write_good_landing(landing)
    write_landing(landing, "accelerometer", [accel(200 + t) for t in range(4)], name="part-3.json")
    assert run(capsys, landing, lake)[0] == 0
    fewer = landing / "accelerometer" / "landing" / "part-3.json"
    size = fewer.stat().st_size
    lines = fewer.read_bytes().splitlines(keepends=True)[:3]
    fewer.write_bytes(b"".join(lines) + b" " * (size - sum(map(len, lines)) - 1) + b"\n")
    code, output = run(capsys, landing, lake)
    assert code == 0, output
    assert _volume_check_alone(landing, lake)["shorter_files"] == [
        f"accelerometer/landing/part-3.json: {size:,} -> {size:,} bytes, 4 -> 3 lines ingested"
    ]


def _lines(landing, source: str) -> list[str]:
    return (landing / source / "landing" / "part-1.json").read_text().splitlines()


def _volume_check_alone(landing, lake) -> dict:
    """The metadata of accelerometer_landing's volume check in a checks-only run (as `stedi check` runs it),
    which judges the published snapshot against the baseline its write recorded."""
    result = dg.materialize(
        TABLE_ASSETS,
        resources=local_resources(landing=str(landing), lake=str(lake)),
        selection=dg.AssetSelection.checks_for_assets(
            *(a for a in TABLE_ASSETS if a.key.path[-1] == "accelerometer_landing")
        ),
    )
    evaluation = checks_of(result)[("accelerometer_landing", "volume")]
    return {k: v.value for k, v in evaluation.metadata.items()}
