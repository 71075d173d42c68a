"""The `stedi` command as a user drives it: generate, run, check, query, and its one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stedi_assets.cli import main
from stedi_assets.cli.common import EXIT_USAGE
from stedi_assets.generator import DEFECTS
from stedi_assets.report import print_table
from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.runs import complete_runs
from stedi_assets.zones import TABLES
from stedi_assets.zones.landing.schema import SOURCE_OF
from stedi_assets_tests.conftest import restored_afterwards


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    assert main(["generate", str(root / "landing"), "--customers", "120", "--seed", "7", "--defects", "all"]) == 0
    return root


@pytest.fixture(scope="module")
def lake(generated):
    lake = generated / "lake"
    assert main(["run", "--landing", str(generated / "landing"), "--lake", str(lake)]) == 0
    return lake


def run_json(lake, sql: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["query", "--lake", str(lake), "--format", "json", sql]) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_prints_what_it_wrote(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "l"), "--customers", "60", "--defects", "malformed_lines"]) == 0
    out = capsys.readouterr().out
    assert "customer" in out and "invalid" in out and "landing written to" in out
    assert (tmp_path / "l" / "accelerometer" / "landing").is_dir()


def test_generate_rejects_unknown_defect(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "l"), "--defects", "gremlins"]) == 2
    assert "gremlins" in capsys.readouterr().err


def test_run_prints_zone_counts_and_checks(generated, capsys, monkeypatch):
    monkeypatch.setenv("STEDI_PROGRESS_SECONDS", "0")  # every progress message of a step gets its plain line
    lake = generated / "lake2"
    assert main(["run", "--landing", str(generated / "landing"), "--lake", str(lake), "--policy", "rubric"]) == 0
    out, err = capsys.readouterr()
    for table in ("customer_landing", "machine_learning_curated", "rejected"):
        assert table in out
    assert "rubric" in out and "checks:" in out and " FAIL " not in out
    # Progress on stderr, as plain lines (not a terminal): each table's step starts, then ends with its rows.
    for spec in TABLES:
        started = err.index(f"  {spec.qualified_name}: started\n")
        (rows,) = run_json(lake, f"SELECT count(*) AS n FROM {spec.qualified_name}", capsys)
        done = rf"  {re.escape(spec.qualified_name)}: done \({rows['n']:,} rows, \d+\.\d s\)\n"
        finished = re.search(done, err[started:])
        assert finished, err
        # in between, its rows so far (landing reads; a SQL step may tell its query's percentage): monotone, at
        # most the final count
        between = err[started : started + finished.end()]
        so_far = [
            int(n.replace(",", ""))
            for n in re.findall(rf"  {re.escape(spec.qualified_name)}: ([\d,]+) rows so far \(\d+ s\)\n", between)
        ]
        assert so_far == sorted(so_far) and all(n <= rows["n"] for n in so_far), between
        if spec.name in SOURCE_OF and rows["n"]:  # a landing read
            assert so_far, between


def test_every_defective_line_is_quarantined_with_a_reason(lake, capsys):
    rows = run_json(
        lake,
        "SELECT source, count(*) AS n, count(reason) AS with_reason FROM landing.rejected "
        "GROUP BY source ORDER BY source",
        capsys,
    )
    assert {r["source"] for r in rows} == {"customer", "accelerometer", "step_trainer"}
    assert all(r["n"] == r["with_reason"] > 0 for r in rows)


def test_query_formats(lake, capsys):
    assert (
        main(["query", "--lake", str(lake), "--format", "csv", "SELECT count(*) AS n FROM curated.customer_curated"])
        == 0
    )
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert int(row["n"]) > 0
    assert main(["query", "--lake", str(lake), "SELECT 42 AS answer"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].strip() == "answer" and out[2].strip() == "42"


def test_check_passes_then_fails_when_consent_is_broken(lake, capsys):
    assert main(["check", "--lake", str(lake)]) == 0
    # Tamper with the published customer_trusted: add a customer who never consented.
    current = open_lake(str(lake)).current("trusted", "customer_trusted")
    path = lake / current.files["data"][0]
    table = pq.read_table(path)
    intruder = {name: [None] for name in table.column_names}
    intruder.update(
        email=["nobody@test.com"],
        serialNumber=["x"],
        registrationDate=[1],
        lastUpdateDate=[1],
        shareWithResearchAsOfDate=[1],
    )
    pq.write_table(pa.concat_tables([table, pa.table(intruder, schema=table.schema)]), path)
    capsys.readouterr()
    assert main(["check", "--lake", str(lake), "--select", "group:trusted"]) == 1
    out = capsys.readouterr().out
    assert any("customer_trusted" in line and "consent" in line and "FAIL" in line for line in out.splitlines())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--landing", "{tmp}/missing"], "landing folder {tmp}/missing does not exist"),
        (["run", "--landing", "{tmp}/empty"], "is empty"),
        (["query", "--lake", "{tmp}/nolake", "SELECT 1"], "has no committed tables"),
        (["check", "--lake", "{tmp}/nolake"], "has no committed tables"),
        (["run", "--landing", "{tmp}/empty", "--lake", "{tmp}/file"], "is not a folder"),
    ],
)
def test_clear_one_line_errors(tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a lake")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.format(tmp=tmp_path) in err


def test_bad_policy_is_refused(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("STEDI_POLICY", "lenient")
    (tmp_path / "customer").mkdir()
    (tmp_path / "customer" / "a.json").write_text("{}\n")
    assert main(["run", "--landing", str(tmp_path), "--lake", str(tmp_path / "lake")]) == 2
    assert "unknown policy 'lenient'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--policy", "lenient"])


def test_bad_sql_and_selection(lake, generated, capsys):
    assert main(["query", "--lake", str(lake), "SELECT * FROM trusted.nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["run", "--landing", str(generated / "landing"), "--lake", str(lake), "--select", "group:"]) == 2
    assert "bad --select" in capsys.readouterr().err
    assert main(["run", "--landing", str(generated / "landing"), "--lake", str(lake), "--select", "group:gold"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "matches no table" in err and "curated/machine_learning_curated" in err
    assert "groups: landing, trusted, curated" in err
    assert main(["check", "--lake", str(lake), "--select", "group:gold"]) == 2  # check selects the same way
    assert capsys.readouterr().err.strip() == err


def test_run_is_recorded_in_the_dagster_home_instance_as_the_named_job(generated, tmp_path, monkeypatch, capfd):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    landing = str(generated / "landing")
    assert main(["run", "--landing", landing, "--lake", str(tmp_path / "lake"), "--select", "group:landing"]) == 0
    assert main(["check", "--lake", str(tmp_path / "lake"), "--select", "group:landing"]) == 0
    err = capfd.readouterr().err
    assert "dagster.yaml" not in err and "telemetry" not in err.lower()  # the CLI says only its own things
    assert "enabled: false" in (home / "dagster.yaml").read_text()  # telemetry off, project-owned config
    with dg.DagsterInstance.get() as instance:
        runs = sorted(instance.get_runs(), key=lambda r: instance.get_run_record_by_id(r.run_id).create_timestamp)
        assert [r.job_name for r in runs] == ["landing_job", "checks_job"]
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert {k: v for k, v in runs[0].tags.items() if k.startswith("stedi/")} == {
            "stedi/policy": "strict",
            "stedi/landing": landing,
            "stedi/engine": "duckdb",
        }
        record = instance.get_latest_materialization_event(dg.AssetKey(["landing", "customer_landing"]))
        assert record.asset_materialization.metadata["dagster/row_count"].value > 0


def test_the_stedi_process_ends_with_main_s_code_after_everything_an_exit_owes(generated, tmp_path):
    """`stedi` ends its process without the interpreter's teardown (cli.command_line): its output is all there,
    its exit code is main's, the atexit handlers ran (DuckDB's spill folders are gone) and its Dagster run is
    recorded whole in DAGSTER_HOME."""
    import subprocess

    temp, home = tmp_path / "tmp", tmp_path / "home"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "DAGSTER_HOME": str(home)}
    landing, lake = str(generated / "landing"), str(tmp_path / "lake")
    command = [sys.executable, "-m", "stedi_assets.cli"]
    done = subprocess.run([*command, "run", "--landing", landing, "--lake", lake], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    last = done.stdout.decode().rstrip().splitlines()[-1]  # the summary, printed last
    assert last.startswith("49 checks: ") and ", 0 failed, " in last
    assert [p.name for p in temp.iterdir() if p.name.startswith("stedi-duckdb-spill-")] == []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
    failed = subprocess.run([*command, "check", "--lake", str(tmp_path / "none")], env=env, capture_output=True)
    assert failed.returncode == EXIT_USAGE and failed.stderr.decode().startswith("stedi: error:")


def test_all_defect_kinds_are_known_to_the_cli():
    assert set(DEFECTS) == {
        "duplicate_serials",
        "revocations",
        "malformed_lines",
        "redelivered_files",
        "email_case",
        "encodings",
    }


def test_a_failed_step_prints_its_root_cause(generated, tmp_path, monkeypatch, capsys):
    from stedi_assets.engines.duckdb_engine import DuckDBEngine

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DuckDBEngine, "select_into", disk_full)
    assert main(["run", "--landing", str(generated / "landing"), "--lake", str(tmp_path / "lake")]) == 1
    out = capsys.readouterr().out
    assert "step customer_trusted failed: OSError: [Errno 28] No space left on device" in out
    assert "DagsterExecutionStepExecutionError" not in out


def test_a_failed_check_step_prints_its_root_cause(lake, monkeypatch, capsys):
    import stedi_assets.assets

    def io_error(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(stedi_assets.assets, "run_checks", io_error)
    capsys.readouterr()
    assert main(["check", "--lake", str(lake), "--select", "group:trusted"]) == 1
    out = capsys.readouterr().out
    assert "step customer_trusted failed: OSError: [Errno 5] Input/output error" in out
    assert "DagsterExecutionStepExecutionError" not in out


def test_a_missing_optional_engine_names_the_extra_to_install(generated, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    without_pyspark = (
        "import sys; sys.modules['pyspark'] = None; from stedi_assets.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    child = subprocess.run(
        [sys.executable, "-c", without_pyspark, "run", "--landing", str(generated / "landing")],
        cwd=repo,  # this checkout's stedi_assets first on the path
        env={**os.environ, "STEDI_ENGINE": "spark", "STEDI_LAKE": str(tmp_path / "lake")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 2 and child.stdout == ""
    assert child.stderr == 'stedi: error: STEDI_ENGINE=spark needs pyspark: pip install "stedi_assets[spark]"\n'
    assert not (tmp_path / "lake").exists()  # refused before anything ran


def test_the_spark_resource_fails_a_step_with_the_same_line(monkeypatch):
    import sys

    from stedi_assets.engines.spark_engine import SparkEngine

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(dg.Failure, match=r'STEDI_ENGINE=spark needs pyspark: pip install "stedi_assets\[spark\]"'):
        SparkEngine().session()


def _column_spans(dashes: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"-+", dashes)]


def test_every_column_of_snapshots_has_a_header(lake, capsys):
    capsys.readouterr()
    assert main(["snapshots", "--lake", str(lake), "trusted.customer_trusted"]) == 0
    header, dashes, *rows = capsys.readouterr().out.splitlines()
    spans = _column_spans(dashes)
    headers = [header[a:b].strip() for a, b in spans]
    assert headers == ["snapshot", "created", "rows", "policy", "run", "tags", "current"]
    assert rows[-1].rstrip().endswith("current")  # the newest snapshot is the current one, under that header
    for row in rows:  # nothing printed outside a headed column
        outside = "".join(c for i, c in enumerate(row) if not any(a <= i < b for a, b in spans))
        assert not outside.strip(), row


def test_a_column_without_a_header_is_refused():
    with pytest.raises(ValueError, match="every column needs a header"):
        print_table(("snapshot", ""), [("1", "current")])


def test_unknown_table_error_is_one_plain_line(lake, capsys):
    capsys.readouterr()
    assert main(["snapshots", "--lake", str(lake), "trusted.nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stedi: error: unknown table 'nope'; known: customer_landing, ")
    assert '"' not in err and len(err.splitlines()) == 1


def test_table_format_cuts_long_cells_and_csv_json_keep_them_whole(lake, capsys):
    sql = "SELECT repeat('x', 300) AS long, 'short' AS short"
    capsys.readouterr()
    assert main(["query", "--lake", str(lake), sql]) == 0
    out, err = capsys.readouterr()
    row = out.splitlines()[2]
    assert row.split() == ["x" * 59 + "…", "short"]
    assert "cut" in err and "--format csv or json" in err
    assert run_json(lake, sql, capsys) == [{"long": "x" * 300, "short": "short"}]
    assert main(["query", "--lake", str(lake), "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "x" * 300 + ",short"
    assert main(["query", "--lake", str(lake), "SELECT 'short' AS short"]) == 0
    assert capsys.readouterr().err == ""  # nothing cut, nothing said


def test_rollback_of_one_table_to_another_policy_warns_in_one_line(two_policy_lake, capsys):
    lake = two_policy_lake / "lake"
    with restored_afterwards(two_policy_lake):
        rubric = [s for s in open_lake(str(lake)).snapshots("trusted", "customer_trusted") if s.policy == "rubric"]
        capsys.readouterr()
        assert main(["rollback", "--lake", str(lake), "trusted.customer_trusted", rubric[-1].snapshot]) == 0
        out, err = capsys.readouterr()
        assert "now at snapshot" in out
        assert len(err.splitlines()) == 1 and err.startswith("stedi: warning: the current tables mix policies")
        assert "rubric: customer_trusted; strict: accelerometer_trusted, step_trainer_trusted, " in err
        # the whole lake back to one run: one policy again, no warning
        assert main(["rollback", "--lake", str(lake), "--run", complete_runs(open_lake(str(lake)))[0][1]]) == 0
        assert capsys.readouterr().err == ""
