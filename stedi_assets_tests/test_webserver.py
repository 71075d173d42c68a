"""End to end through the Dagster UI's own API: start `dagster dev` on workspace.yaml, read the catalog
a user sees over GraphQL, and press "Materialize selected" the way the UI does.

One `dagster dev` (dev_server.py: webserver, daemon, code server) serves the whole module.
"""

from __future__ import annotations

import json
import time

import pytest
from dev_server import LOCATION, ZONE_TABLES, Server, run_errors, start_dagster_dev

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 150  # s for the launched run to finish

ASSET_KEYS = {(zone, name) for zone, names in ZONE_TABLES.items() for name in names}
# Checks a user must find on each table (the tables may have more).
REQUIRED_CHECKS = {
    **{("landing", t): {"reconciliation"} for t in ZONE_TABLES["landing"] if t != "rejected"},
    ("landing", "rejected"): {"quarantine_complete"},
    **{(z, t): {"consent"} for z in ("trusted", "curated") for t in ZONE_TABLES[z]},
    ("curated", "machine_learning_curated"): {"consent", "no_pii"},
}
JOBS = {"landing_job", "trusted_job", "curated_job", "lakehouse_job", "checks_job"}
SELECTION = [
    ["landing", "customer_landing"],
    ["landing", "accelerometer_landing"],
    ["landing", "step_trainer_landing"],
    ["trusted", "customer_trusted"],
]
UDACITY_CUSTOMER_TRUSTED_ROWS = 482  # the strict policy's count on the Udacity data


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, udacity_landing) -> Server:
    return start_dagster_dev(request, tmp_path_factory.mktemp("dagster_dev"), udacity_landing)


# --------------------------------------------------------------------------------------------- catalog

CATALOG_QUERY = """
{ assetNodes {
    assetKey { path } groupName description
    repository { name location { name } }
    assetChecksOrError { __typename ... on AssetChecks { checks { name description } } }
    metadataEntries { __typename label
      ... on TableSchemaMetadataEntry { schema { columns { name type description } } } } } }
"""


@pytest.fixture(scope="module")
def catalog(server) -> dict[tuple[str, ...], dict]:
    nodes = server.graphql(CATALOG_QUERY)["assetNodes"]
    return {tuple(n["assetKey"]["path"]): n for n in nodes if n["repository"]["location"]["name"] == LOCATION}


def test_catalog_has_every_table_keyed_and_grouped_by_zone(catalog):
    assert set(catalog) == ASSET_KEYS
    for key, node in catalog.items():
        assert node["groupName"] == key[0], f"{'/'.join(key)} is in group {node['groupName']}"


@pytest.mark.parametrize("key", sorted(ASSET_KEYS), ids="/".join)
def test_asset_shows_its_rule_checks_and_documented_columns(catalog, key):
    node = catalog[key]
    name = "/".join(key)
    description = (node["description"] or "").strip()
    assert description, f"{name} has no description"
    assert "Rule:" in description, f"{name}'s description states no rule: {description!r}"

    assert node["assetChecksOrError"]["__typename"] == "AssetChecks", node["assetChecksOrError"]
    checks = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}
    assert REQUIRED_CHECKS[key] <= set(checks), f"{name} checks {sorted(checks)} lack {REQUIRED_CHECKS[key]}"
    undocumented = [c for c, check in checks.items() if not (check["description"] or "").strip()]
    assert not undocumented, f"{name}: checks without a description: {undocumented}"

    schemas = [
        e
        for e in node["metadataEntries"]
        if e["__typename"] == "TableSchemaMetadataEntry" and e["label"] == "dagster/column_schema"
    ]
    assert len(schemas) == 1, f"{name} has no dagster/column_schema in its definition metadata"
    columns = schemas[0]["schema"]["columns"]
    assert columns, f"{name}'s column schema is empty"
    undocumented = [c["name"] for c in columns if not (c["description"] or "").strip()]
    assert not undocumented, f"{name}: columns without a description: {undocumented}"


REPOSITORY_QUERY = """
{ repositoriesOrError { __typename
    ... on RepositoryConnection { nodes { name location { name }
        jobs { name } schedules { name cronSchedule pipelineName } sensors { name targets { pipelineName } } } }
    ... on PythonError { message } } }
"""


def test_jobs_schedule_and_sensor_are_listed(server):
    repos = server.graphql(REPOSITORY_QUERY)["repositoriesOrError"]
    assert repos["__typename"] == "RepositoryConnection", repos
    [repo] = [r for r in repos["nodes"] if r["location"]["name"] == LOCATION]
    assert JOBS <= {j["name"] for j in repo["jobs"]}
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert "daily_lakehouse" in schedules, sorted(schedules)
    assert schedules["daily_lakehouse"]["pipelineName"] == "lakehouse_job"
    sensors = {s["name"]: s for s in repo["sensors"]}
    assert "landing_sensor" in sensors, sorted(sensors)
    assert "lakehouse_job" in {t["pipelineName"] for t in sensors["landing_sensor"]["targets"] or []}


# --------------------------------------------------------------------------------------------- launch

# What the UI's LaunchAssetExecutionButton loads for a selection (LaunchAssetLoaderQuery, trimmed).
LAUNCH_LOADER_QUERY = """
query LaunchAssetLoaderQuery($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path } jobNames
    repository { name location { name } }
    assetChecksOrError { __typename ... on AssetChecks { checks { name jobNames } } } }
  assetNodeAdditionalRequiredKeys(assetKeys: $assetKeys) { path } }
"""

# The UI's LAUNCH_PIPELINE_EXECUTION_MUTATION (ui-core/src/runs/RunUtils.tsx).
LAUNCH_MUTATION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId pipelineName } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack } } }
"""

RUN_QUERY = """
query ($runId: ID!) { runOrError(runId: $runId) { __typename
    ... on Run { status assetSelection { path }
      assetCheckSelection { name assetKey { path } } }
    ... on RunNotFoundError { message } } }
"""

LATEST_QUERY = """
query ($assetKeys: [AssetKeyInput!]!) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    assetMaterializations(limit: 1) { runId metadataEntries { __typename label
        ... on IntMetadataEntry { intValue }
        ... on MarkdownMetadataEntry { mdStr }
        ... on TableMetadataEntry { table { records } } } }
    assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { runId status evaluation { success severity } } } } } } }
"""

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def _key_inputs(keys):
    return [{"path": list(k)} for k in keys]


def _execution_params(server: Server, keys: list[list[str]], job: str = "__ASSET_JOB") -> dict:
    """The UI's executionParamsForAssetJob: the selected assets plus all their checks in the job."""
    data = server.graphql(LAUNCH_LOADER_QUERY, {"assetKeys": _key_inputs(keys)})
    assert data["assetNodeAdditionalRequiredKeys"] == [], (
        f"the UI would warn that more assets must be materialized: {data['assetNodeAdditionalRequiredKeys']}"
    )
    nodes = data["assetNodes"]
    assert sorted(n["assetKey"]["path"] for n in nodes) == sorted(keys)
    assert all(job in n["jobNames"] for n in nodes), {tuple(n["assetKey"]["path"]): n["jobNames"] for n in nodes}
    [repository] = {(n["repository"]["location"]["name"], n["repository"]["name"]) for n in nodes}
    checks = [
        {"name": c["name"], "assetKey": {"path": n["assetKey"]["path"]}}
        for n in nodes
        if n["assetChecksOrError"]["__typename"] == "AssetChecks"
        for c in n["assetChecksOrError"]["checks"]
        if not c["jobNames"] or job in c["jobNames"]
    ]
    return {
        "mode": "default",
        "executionMetadata": {"tags": []},
        "runConfigData": "{}",
        "selector": {
            "repositoryLocationName": repository[0],
            "repositoryName": repository[1],
            "pipelineName": job,
            "assetSelection": _key_inputs(keys),
            "assetCheckSelection": checks,
        },
    }


@pytest.fixture(scope="module")
def materialized(server) -> dict:
    """Press "Materialize selected" on the three landing tables + customer_trusted; wait for the run."""
    params = _execution_params(server, SELECTION)
    launched = server.graphql(LAUNCH_MUTATION, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT
    run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
    while run["__typename"] == "Run" and run["status"] not in TERMINAL and time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"dagster dev exited during the run:\n{server.log_tail()}")
        time.sleep(0.5)
        run = server.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
    assert run["__typename"] == "Run", run
    assert run["status"] in TERMINAL, f"run {run_id} still {run['status']} after {RUN_TIMEOUT}s"
    return {"run_id": run_id, "run": run, "params": params}


def test_materialize_selected_succeeds(server, materialized):
    run, run_id = materialized["run"], materialized["run_id"]
    assert run["status"] == "SUCCESS", (
        f"run {run_id} ended {run['status']}:\n{run_errors(server, run_id)}\n{server.log_tail()}"
    )
    assert sorted(k["path"] for k in run["assetSelection"]) == sorted(SELECTION)
    launched_checks = {
        (c["assetKey"]["path"][-1], c["name"]) for c in materialized["params"]["selector"]["assetCheckSelection"]
    }
    assert ("customer_trusted", "consent") in launched_checks
    assert {(c["assetKey"]["path"][-1], c["name"]) for c in run["assetCheckSelection"]} == launched_checks
    # The run wrote to the lake we configured (a .env in the repo root could have redirected it).
    assert any(p.suffix == ".parquet" for p in server.lake.rglob("*")), f"no Parquet file under {server.lake}"


def test_customer_trusted_shows_count_preview_and_passed_consent(server, materialized):
    assert materialized["run"]["status"] == "SUCCESS", "see test_materialize_selected_succeeds"
    run_id = materialized["run_id"]
    [node] = server.graphql(LATEST_QUERY, {"assetKeys": _key_inputs([["trusted", "customer_trusted"]])})["assetNodes"]

    [latest] = node["assetMaterializations"]
    assert latest["runId"] == run_id
    metadata = {e["label"]: e for e in latest["metadataEntries"]}
    assert metadata["dagster/row_count"]["__typename"] == "IntMetadataEntry", metadata.get("dagster/row_count")
    assert metadata["dagster/row_count"]["intValue"] == UDACITY_CUSTOMER_TRUSTED_ROWS
    assert "preview" in metadata, sorted(metadata)
    preview = metadata["preview"]
    shown = preview.get("mdStr") or json.dumps((preview.get("table") or {}).get("records") or [])
    assert "email" in shown, f"preview shows no customer rows: {preview}"

    checks = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}
    execution = checks["consent"]["executionForLatestMaterialization"]
    assert execution is not None, "consent was not evaluated for the latest materialization"
    assert execution["runId"] == run_id
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["evaluation"]["success"] is True, execution
