"""The Definitions load as `dagster dev` loads them, with the jobs, schedule and sensor a user expects."""

from __future__ import annotations

import subprocess
import sys
from typing import get_type_hints

import dagster as dg
from conftest import REPO

from stedi_assets.definitions import defs
from stedi_assets.zones import TABLES


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_table_is_an_asset_grouped_by_zone_with_checks():
    graph = defs.resolve_asset_graph()
    keys = {tuple(k.path) for k in graph.get_all_asset_keys()}
    assert keys == {spec.key for spec in TABLES}
    assert len(keys) == 9  # 8 tables + the quarantine
    for spec in TABLES:
        node = graph.get(dg.AssetKey(list(spec.key)))
        assert node.group_name == spec.zone
        assert {c.name for c in node.check_keys} == set(spec.checks)
        assert "Rule:" in (node.description or "")


def test_graph_follows_the_sql():
    graph = defs.resolve_asset_graph()
    parents = {k.path[-1]: {p.path[-1] for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert parents["customer_trusted"] == {"customer_landing"}
    assert parents["customer_curated"] == {"customer_trusted", "accelerometer_trusted"}
    assert parents["machine_learning_curated"] == {"step_trainer_trusted", "accelerometer_trusted"}
    assert {"step_trainer_landing", "customer_curated"} <= parents["step_trainer_trusted"]


def test_jobs_schedule_and_sensor():
    for name in ("landing_job", "trusted_job", "curated_job", "lakehouse_job", "checks_job"):
        assert defs.resolve_job_def(name) is not None
    assert defs.resolve_schedule_def("daily_lakehouse").cron_schedule == "0 3 * * *"
    assert defs.resolve_sensor_def("landing_sensor") is not None


def test_every_engine_implements_the_one_interface_the_assets_are_typed_against():
    from stedi_assets.assets import materialize_table
    from stedi_assets.builders import build_sql
    from stedi_assets.engines.base import Engine
    from stedi_assets.engines.duckdb_engine import DuckDBEngine
    from stedi_assets.engines.spark_engine import SparkEngine
    from stedi_assets.glue.pipes import GlueEngine

    assert Engine.__abstractmethods__ == {"name", "select_into"}
    for engine in (DuckDBEngine, SparkEngine, GlueEngine):
        assert issubclass(engine, Engine) and not engine.__abstractmethods__, engine
    for function in (materialize_table, build_sql):
        assert get_type_hints(function)["engine"] is Engine, function


def test_dagster_cli_validates_the_workspace():
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_landing_sensor_requests_a_run_only_when_landing_files_change(tmp_path):
    from stedi_assets.jobs import landing_sensor
    from stedi_assets.resources import LandingResource

    def evaluate(cursor):
        context = dg.build_sensor_context(cursor=cursor, resources={"landing": LandingResource(root=str(tmp_path))})
        return landing_sensor(context), context.cursor

    (tmp_path / "customer" / "landing").mkdir(parents=True)
    (tmp_path / "customer" / "landing" / "c-1.json").write_text('{"email": "a@b"}\n')
    first, cursor = evaluate(None)
    assert isinstance(first, dg.RunRequest)
    again, same = evaluate(cursor)
    assert isinstance(again, dg.SkipReason) and same == cursor
    (tmp_path / "customer" / "landing" / "notes.txt").write_text("not a landing file")
    assert isinstance(evaluate(cursor)[0], dg.SkipReason)
    (tmp_path / "customer" / "landing" / "c-2.json").write_text('{"email": "c@d"}\n')
    new, new_cursor = evaluate(cursor)
    assert isinstance(new, dg.RunRequest) and new_cursor != cursor and new.run_key == new_cursor


def test_policy_is_chosen_in_dagster_run_config(udacity_landing, tmp_path):
    """What the launchpad does: `resources: policy: config: name: rubric` overrides STEDI_POLICY."""
    from stedi_assets.assets import TABLE_ASSETS
    from stedi_assets.jobs import JOBS
    from stedi_assets.resources import local_resources

    local = dg.Definitions(
        assets=TABLE_ASSETS, jobs=JOBS, resources=local_resources(landing=str(udacity_landing), lake=str(tmp_path))
    )
    result = local.resolve_job_def("lakehouse_job").execute_in_process(
        run_config={"resources": {"policy": {"config": {"name": "rubric"}}}}
    )
    rows = {
        e.asset_key.path[-1]: e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
    }
    assert rows["accelerometer_trusted"] == 40981 and rows["machine_learning_curated"] == 43681
