"""A run reads a consistent lake: the snapshots it produced or pinned at its start, never another run's.

The cases the home-made format got wrong: two runs with different landing data on one lake, a downstream
build that fails after its inputs were committed, two writers of one table, and reading an older run.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import dagster as dg
from conftest import run_pipeline, write_landing

from stedi_assets.cli import main
from stedi_assets.engines.duckdb_engine import DuckDBEngine
from stedi_assets.storage.lake import CommitConflict, open_lake
from stedi_assets.storage.runs import complete_runs, view_of_run
from stedi_assets.zones import table as table_spec


def person(n: int, consent: int | None = 1) -> list[dict]:
    email = f"p{n}@test.com"
    return [
        {
            "customerName": f"P {n}",
            "email": email,
            "phone": "1",
            "birthDay": "1990-01-01",
            "serialNumber": f"s-{n}",
            "registrationDate": 1,
            "lastUpdateDate": 1,
            "shareWithResearchAsOfDate": consent,
        }
    ]


def landing_with(root: Path, people: int, first: int = 0) -> Path:
    """Landing files with consenting customers first..people-1, each with one accelerometer and one step
    reading (people from `first` on go to new files, as new deliveries do)."""
    name = f"part-{first}.json"
    write_landing(root, "customer", [c for n in range(first, people) for c in person(n)], name)
    write_landing(
        root,
        "accelerometer",
        [{"user": f"p{n}@test.com", "timestamp": 10, "x": 1, "y": 0, "z": 0} for n in range(first, people)],
        name,
    )
    write_landing(
        root,
        "step_trainer",
        [{"sensorReadingTime": 10, "serialNumber": f"s-{n}", "distanceFromObject": 5} for n in range(first, people)],
        name,
    )
    return root


def while_building(table: str, monkeypatch, action) -> list:
    """Run `action` once while this process's engine builds `table` (another run interleaving with this one);
    the list it returns receives the action's result."""
    real, results = DuckDBEngine.select_into, []

    def hook(self, sql, relations, output_dir, **kwargs):
        if not results and table in output_dir:
            results.append(None)  # the action's own build of `table` must not re-enter this hook
            results[0] = action()
        return real(self, sql, relations, output_dir, **kwargs)

    monkeypatch.setattr(DuckDBEngine, "select_into", hook)
    return results


def counts(lake: Path, capsys, *extra: str) -> dict[str, int]:
    capsys.readouterr()
    sql = " UNION ALL ".join(
        f"SELECT '{t}' AS t, count(*) AS n FROM {t}"
        for t in ("landing.customer_landing", "trusted.customer_trusted", "curated.machine_learning_curated")
    )
    assert main(["query", "--lake", str(lake), "--format", "json", *extra, sql]) == 0
    return {r["t"]: r["n"] for r in json.loads(capsys.readouterr().out)}


def test_a_run_reads_its_own_landing_although_another_run_committed_landing_meanwhile(tmp_path, monkeypatch, capsys):
    lake = tmp_path / "lake"
    landing_a, landing_b = landing_with(tmp_path / "a", 3), landing_with(tmp_path / "b", 5)
    interleaved = while_building(
        "customer_trusted",
        monkeypatch,  # run B commits its landing tables meanwhile
        lambda: run_pipeline(landing_b, lake, selection=dg.AssetSelection.groups("landing")),
    )
    result_a = run_pipeline(landing_a, lake)
    assert interleaved[0].success and result_a.success

    current = open_lake(str(lake)).current("landing", "customer_landing")
    assert current.rows["data"] == 5 and current.run_id != result_a.run_id  # B's landing is current ...
    view = view_of_run(open_lake(str(lake)), result_a.run_id)  # ... A built and tagged its own
    assert view["customer_landing"].rows["data"] == 3 and view["customer_trusted"].rows["data"] == 3
    assert view["customer_trusted"].inputs["customer_landing"] == view["customer_landing"].snapshot
    assert counts(lake, capsys) == {
        "landing.customer_landing": 3,
        "trusted.customer_trusted": 3,
        "curated.machine_learning_curated": 3,
    }  # the latest complete run: A's


def test_a_run_whose_table_another_run_rewrote_fails_naming_that_run(tmp_path, monkeypatch, capsys):
    lake = tmp_path / "lake"
    landing_a, landing_b = landing_with(tmp_path / "a", 3), landing_with(tmp_path / "b", 5)
    other = while_building(
        "customer_trusted",
        monkeypatch,  # run B does everything meanwhile
        lambda: run_pipeline(landing_b, lake),
    )
    result_a = run_pipeline(landing_a, lake)
    assert not result_a.success
    assert other[0].success
    failure = next(e for e in result_a.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert f"committed by run {other[0].run_id}" in message and len(message.strip().splitlines()) == 1
    # B's lake is whole and is what readers get; A committed nothing after its landing tables.
    assert complete_runs(open_lake(str(lake)))[0][1] == other[0].run_id
    assert counts(lake, capsys) == {
        "landing.customer_landing": 5,
        "trusted.customer_trusted": 5,
        "curated.machine_learning_curated": 5,
    }


def test_a_failed_downstream_build_leaves_readers_and_checks_on_the_last_complete_run(tmp_path, monkeypatch, capsys):
    lake, landing = tmp_path / "lake", landing_with(tmp_path / "landing", 3)
    assert main(["run", "--landing", str(landing), "--lake", str(lake)]) == 0
    first = complete_runs(open_lake(str(lake)))[0][1]
    landing_with(landing, 4, first=3)  # a new customer arrives ...
    real = DuckDBEngine.select_into

    def disk_full(self, sql, relations, output_dir, **kwargs):
        if "machine_learning_curated" in output_dir:
            raise OSError(28, "No space left on device")
        return real(self, sql, relations, output_dir, **kwargs)

    monkeypatch.setattr(DuckDBEngine, "select_into", disk_full)
    assert main(["run", "--landing", str(landing), "--lake", str(lake)]) == 1  # ... and the ML build fails
    monkeypatch.setattr(DuckDBEngine, "select_into", real)

    assert counts(lake, capsys, "--as-of", "current")["trusted.customer_trusted"] == 4  # inputs moved on
    assert counts(lake, capsys) == {
        "landing.customer_landing": 3,
        "trusted.customer_trusted": 3,
        "curated.machine_learning_curated": 3,
    }  # readers: run 1's lake
    capsys.readouterr()
    assert main(["check", "--lake", str(lake)]) == 0  # audits run 1's lake
    assert "0 failed" in capsys.readouterr().out
    assert complete_runs(open_lake(str(lake)))[0][1] == first


def test_as_of_reads_an_older_complete_run_and_refuses_an_unknown_one(tmp_path, capsys):
    lake, landing = tmp_path / "lake", landing_with(tmp_path / "landing", 2)
    assert main(["run", "--landing", str(landing), "--lake", str(lake)]) == 0
    first = complete_runs(open_lake(str(lake)))[0][1]
    landing_with(landing, 6, first=2)
    assert main(["run", "--landing", str(landing), "--lake", str(lake)]) == 0
    assert counts(lake, capsys)["curated.machine_learning_curated"] == 6
    assert counts(lake, capsys, "--as-of", first[:8])["curated.machine_learning_curated"] == 2
    capsys.readouterr()
    assert main(["query", "--lake", str(lake), "--as-of", "no-such-run", "SELECT 1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stedi: error: no complete run 'no-such-run'") and "\n" not in err
    capsys.readouterr()
    assert main(["snapshots", "--lake", str(lake), "curated.machine_learning_curated"]) == 0
    assert f"run-{first}" in capsys.readouterr().out


def test_two_writers_of_one_table_never_lose_a_commit(tmp_path):
    landing, lake_root = landing_with(tmp_path / "landing", 2), tmp_path / "lake"
    assert run_pipeline(landing, lake_root, selection=dg.AssetSelection.groups("landing")).success
    lake = open_lake(str(lake_root))
    spec = table_spec("customer_trusted")
    schemas = {"data": spec.arrow_schema("strict")}
    writes = [lake.stage("trusted", "customer_trusted", schemas) for _ in range(2)]  # both read the same base
    for n, staged in enumerate(writes):
        import pyarrow as pa
        import pyarrow.parquet as pq

        with lake.local_output(staged.file("data")) as path:
            pq.write_table(pa.table({c: [None] * (n + 1) for c in schemas["data"].names}, schema=schemas["data"]), path)
        staged.policy = "strict"
    outcomes: dict[int, object] = {}

    def commit(n: int) -> None:
        try:
            outcomes[n] = lake.commit(writes[n], f"writer-{n}", "duckdb", set())
        except CommitConflict as err:
            outcomes[n] = err

    threads = [threading.Thread(target=commit, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, o in outcomes.items() if not isinstance(o, CommitConflict)]
    assert len(winners) == 1, outcomes
    loser = 1 - winners[0]
    assert f"committed by run writer-{winners[0]}" in str(outcomes[loser])
    history = lake.snapshots("trusted", "customer_trusted")
    assert [s.run_id for s in history] == [f"writer-{winners[0]}"]  # the winner's commit is there
    assert history[0].rows["data"] == winners[0] + 1


def test_a_lake_in_the_previous_format_is_refused_then_migrated(tmp_path, capsys):
    landing, new_lake = landing_with(tmp_path / "landing", 3), tmp_path / "new"
    assert main(["run", "--landing", str(landing), "--lake", str(new_lake)]) == 0
    old_lake = tmp_path / "old"
    write_previous_format(open_lake(str(new_lake)), old_lake)
    capsys.readouterr()
    assert main(["query", "--lake", str(old_lake), "SELECT 1"]) == 2
    assert f"stedi migrate --lake {old_lake}" in capsys.readouterr().err
    assert main(["migrate", "--lake", str(old_lake)]) == 0
    assert not list(old_lake.rglob("_current.json")) and not list(old_lake.rglob("_manifest.json"))
    assert counts(old_lake, capsys) == counts(new_lake, capsys)
    capsys.readouterr()
    assert main(["check", "--lake", str(old_lake)]) == 0
    assert main(["migrate", "--lake", str(old_lake)]) == 0
    assert "nothing to migrate" in capsys.readouterr().out


def write_previous_format(lake, target: Path) -> None:
    """The lake as the previous format kept it: per table snapshots/<id>/<part>/*.parquet, a _manifest.json
    beside them and a _current.json pointer holding the same manifest, inputs by the old snapshot ids."""
    import shutil

    from stedi_assets.zones import TABLES

    old_ids = {spec.name: f"20260101T000000000000Z-{n:06x}" for n, spec in enumerate(TABLES)}
    for spec in TABLES:
        snap = lake.current(spec.zone, spec.name)
        old_id = old_ids[spec.name]
        folder = target / spec.zone / spec.name / "snapshots" / old_id
        files = {}
        for part, paths in snap.files.items():
            for n, rel in enumerate(paths):
                dest = folder / part / f"part-{n:05d}.parquet"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(lake.uri(rel), dest)
                files.setdefault(part, []).append(str(dest.relative_to(target)))
        manifest = {
            "zone": spec.zone,
            "table": spec.name,
            "snapshot": old_id,
            "created_at": snap.created_at,
            "files": files,
            "rows": snap.rows,
            "policy": snap.policy,
            "inputs": {name: old_ids[name] for name in snap.inputs},
            "extra": snap.extra,
        }
        (folder / "_manifest.json").write_text(json.dumps(manifest))
        (target / spec.zone / spec.name / "_current.json").write_text(json.dumps(manifest))
    shutil.copytree(Path(lake.root) / "_private", target / "_private")


def test_every_commit_records_its_run_policy_engine_and_input_snapshots(tmp_path):
    from stedi_assets.zones import TABLES
    from stedi_assets.zones.sql import dependencies

    result = run_pipeline(landing_with(tmp_path / "landing", 2), tmp_path / "lake", "rubric")
    assert result.success
    lake = open_lake(str(tmp_path / "lake"))
    current = {t.name: lake.current(t.zone, t.name) for t in TABLES}
    for spec in TABLES:
        snap = current[spec.name]
        summary = lake.iceberg(spec.zone, spec.name).current_snapshot().summary.additional_properties
        assert summary["stedi.run-id"] == result.run_id
        assert summary["stedi.engine"] == "duckdb"  # SQL tables: the engine; landing tables: its landing reader
        assert summary["stedi.policy"] == ("" if spec.zone == "landing" else "rubric")
        assert snap.inputs == {name: current[name].snapshot for name in dependencies(spec)}
        assert f"run-{result.run_id}" in lake.tags(spec.zone, spec.name)
