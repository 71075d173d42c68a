"""Every table of the lake as a Dagster asset, made by one factory from its contract and its rule.

Each asset stages new data files, audits them with the table's checks (write-audit-publish) and only
then returns them for the IO manager to commit as the table's next Iceberg snapshot. When only its checks
are selected (the checks job, `stedi check`) it audits the lake's latest consistent snapshot instead and
writes nothing.
"""

from collections.abc import Iterator

import dagster as dg

from .builders import build_landing, build_sql
from .checks import CHECKS, run_checks
from .checks.audit import Audit, needs_pseudonym_key
from .contract import PII, TableSpec
from .engines.base import Engine
from .engines.duckdb_engine import attach_parquet, connect, quote_identifier
from .resources import LandingResource, PolicyResource, VolumeResource
from .step_progress import StepProgress
from .storage.io_manager import LakeResource, run_started_ms
from .storage.lake import Lake, Snapshot, StagedWrite
from .storage.runs import pinned
from .zones import TABLES, table
from .zones.landing.schema import SOURCE_OF
from .zones.landing.validation import FIELDS
from .zones.sql import dependencies, rule_text

PREVIEW_ROWS = 5


def column_schema(spec: TableSpec, policy: str | None = None) -> dg.TableSchema:
    columns = spec.columns if policy is None else spec.columns_for(policy)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.type,
                description=c.description
                + ("" if policy or len(c.policies) > 1 else f" ({c.policies[0]} policy only)"),
                tags={PII: "true"} if c.pii else {},
            )
            for c in columns
        ]
    )


def describe(spec: TableSpec) -> str:
    """The asset's docstring: what the table is and the rule that builds it."""
    if spec.name in SOURCE_OF:
        fields = ", ".join(key + ("" if required else "?") for key, _, required in FIELDS[SOURCE_OF[spec.name]])
        rule = (
            f"Rule: every non-blank line under <landing>/{SOURCE_OF[spec.name]}/ (.json, .jsonl, .gz, any "
            f"depth) that is a JSON object with valid {fields} (? = optional) becomes a typed row; every "
            "other line goes to landing.rejected with a reason. A file that cannot be read to its end keeps the "
            "lines read before the damage and gets one landing.rejected row, reason 'unreadable_file: <cause>'; "
            "entries that are not regular files (FIFO, socket, device, link to a folder) are skipped unopened "
            "and counted."
        )
    else:
        rule = "Rule: " + rule_text(spec)
    return f"{spec.description}\n\n{rule}"


MASK = "•••"  # a preview cell of a personal-data column that holds a value


def preview(lake: Lake, spec: TableSpec, files: list[str]) -> dg.MetadataValue:
    """The first rows of a snapshot, for the shape of the data. Dagster keeps metadata in its run history,
    which no erasure reaches: only the contract's columns not tagged pii show their values; every other
    column (pii, or unknown to the contract) shows MASK, and its values never leave DuckDB."""
    shown = {c.name for c in spec.columns if not c.pii}
    with connect(lake.store.duckdb_setup()) as con:
        attach_parquet(con, {"t": [lake.uri(files[0])]})
        header = [row[0] for row in con.execute("DESCRIBE SELECT * FROM t").fetchall()]
        cells = [
            quote_identifier(c)
            if c in shown
            else f"CASE WHEN {quote_identifier(c)} IS NULL THEN NULL ELSE '{MASK}' END"
            for c in header
        ]
        rows = con.execute(f"SELECT {', '.join(cells)} FROM t LIMIT {PREVIEW_ROWS}").fetchall()
    if not rows:
        return dg.MetadataValue.md("*(no rows)*")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_markdown_cell(v) for v in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _markdown_cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _check_result(spec: TableSpec, name: str, outcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(list(spec.key)),
        check_name=name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(outcome.severity),
        metadata=dict(outcome.metadata),
    )


def _audit(
    spec, policy, target, lake, inputs, policy_resource, volume: VolumeResource, lookup, from_recorded=False
) -> Audit:
    needs_key = needs_pseudonym_key(spec, policy)
    return Audit(
        spec=spec,
        policy=policy,
        files=target.files,
        extra=target.extra,
        lake=lake,
        inputs=inputs,
        pseudonym_key=policy_resource.pseudonym_key(lake) if needs_key else None,
        lookup=lookup,
        max_shrink=volume.max_shrink,
        allow_shrink=volume.allow_shrink,
        from_recorded=from_recorded,
    )


def _check_inputs(spec: TableSpec, policy: str, inputs: dict[str, Snapshot]) -> None:
    for snap in inputs.values():
        if snap.policy not in (None, policy):
            raise dg.Failure(
                f"{snap.qualified_name} was built with policy {snap.policy}, this run uses "
                f"{policy}: materialize {spec.qualified_name}'s upstream tables with {policy} too"
            )


def materialize_table(
    context: dg.AssetExecutionContext,
    spec: TableSpec,
    landing: LandingResource,
    lake_resource: LakeResource,
    engine: Engine,
    policy: PolicyResource,
    volume: VolumeResource,
    inputs: dict[str, Snapshot],
) -> Iterator:
    lake = lake_resource.lake()
    key = dg.AssetKey(list(spec.key))
    selected = [c.name for c in context.selected_asset_check_keys if c.asset_key == key]
    if key not in context.selected_asset_keys:  # checks only: audit the lake's consistent view
        view = lake_resource.view(lake)
        if spec.name not in view:
            raise dg.Failure(f"{spec.qualified_name} has no committed snapshot in {lake.root}; materialize it first")
        current = view[spec.name]
        audit = _audit(spec, current.policy or policy.name, current, lake, inputs, policy, volume, view.__getitem__)
        for name, outcome in run_checks(audit, selected).items():
            yield _check_result(spec, name, outcome)
        return

    _check_inputs(spec, policy.name, inputs)
    landing_store = landing.store() if spec.name in SOURCE_OF else None
    run = context.run
    started = run_started_ms(context.instance, run.run_id)
    yield from _write_audit_publish(
        context,
        spec,
        lake,
        landing_store,
        engine,
        policy,
        volume,
        inputs,
        selected,
        lambda name: pinned(lake, name, run.run_id, started),
    )


def _write_audit_publish(
    context, spec, lake, landing_store, engine, policy, volume, inputs, selected, lookup
) -> Iterator:
    staged = lake.stage(spec.zone, spec.name, {part: spec.arrow_schema(policy.name, part) for part in spec.parts})
    progress = StepProgress(context.log)  # rows so far / query percentage, for `stedi run`'s progress lines
    try:
        if landing_store is not None:
            build_landing(spec, staged, lake, landing_store, engine, on_rows=progress.rows)
            _log_landing_files(context, spec, staged)
        else:
            how = build_sql(
                spec,
                staged,
                lake,
                engine,
                policy.name,
                inputs,
                lambda: policy.pseudonym_key(lake),
                on_percent=progress.percent,
            )
            context.log.info(f"{spec.qualified_name}: {how.how} ({how.reason})")
        # what the volume check compares with, recorded so that a checks-only run judges the same
        staged.extra["volume_baseline"] = staged.base.get("data")
        if volume.allow_shrink:
            staged.extra["shrink_allowed"] = True
        audit = _audit(spec, policy.name, staged, lake, inputs, policy, volume, lookup, from_recorded=True)
        gate = [n for n in spec.checks if CHECKS[n].blocking]
        outcomes = run_checks(audit, dict.fromkeys([*gate, *selected]))
    except BaseException:
        lake.discard(staged)
        raise
    blocked = [n for n in gate if not outcomes[n].passed and outcomes[n].severity == "ERROR"]
    checked = {n: dict(o.metadata) for n, o in outcomes.items() if CHECKS[n].recorded}
    if checked:
        staged.extra["checked"] = checked
    if audit.memo:  # outcomes the next snapshot may reuse (checks/memo.py)
        staged.extra["outcomes"] = audit.memo
    if blocked:
        lake.discard(staged)
    else:
        # The IO manager commits it (one Iceberg commit) before the checks' results are reported.
        yield dg.Output(staged, output_name=spec.name, metadata=_snapshot_metadata(spec, staged, lake))
    for name in selected:
        yield _check_result(spec, name, outcomes[name])
    if blocked:
        details = "; ".join(f"{n} {dict(outcomes[n].metadata)}" for n in blocked)
        raise dg.Failure(f"{spec.qualified_name} not committed: blocking check failed: {details}")


def _log_landing_files(context: dg.AssetExecutionContext, spec: TableSpec, staged: StagedWrite) -> None:
    """Name the landing entries the reader skipped or could not read (paths only, never their content)."""
    for key, what in (
        ("skipped_files", "skipped, not a regular file (never opened)"),
        ("unreadable_files", "unreadable, see its row in landing.rejected"),
    ):
        for path in staged.extra[key]:
            context.log.warning(f"{spec.qualified_name}: landing entry {path}: {what}")
    read = staged.extra["landing_read"]
    context.log.info(
        f"{spec.qualified_name}: read {len(read['files'])} landing files ({len(read['new'])} new, "
        f"{len(read['changed'])} changed), kept the rows of {read['kept_files']} files read before"
    )
    for path in read["vanished"]:
        context.log.warning(f"{spec.qualified_name}: landing file {path} is gone: its rows are retracted")


def _snapshot_metadata(spec: TableSpec, staged: StagedWrite, lake: Lake) -> dict:
    metadata = {
        "dagster/row_count": staged.rows["data"],
        "dagster/column_schema": column_schema(spec, staged.policy or "strict"),
        "dagster/table_name": spec.qualified_name,
        "preview": preview(lake, spec, staged.files["data"]),
        "policy": staged.policy or "(any)",
    }
    if "build" in staged.extra:  # how a derived table's snapshot was made (zones/incremental.py): table names only
        metadata["build"] = staged.extra["build"]
        metadata["build_reason"] = staged.extra.get("build_reason", "first build")
    if "rejected" in staged.rows:
        metadata["rejected_lines"] = staged.rows["rejected"]
        metadata["ignored_files"] = len(staged.extra["ignored_files"])
        metadata["skipped_files"] = len(staged.extra["skipped_files"])
        metadata["unreadable_files"] = len(staged.extra["unreadable_files"])
        metadata["landing_files_read"] = len(staged.extra["landing_read"]["files"])
        metadata["landing_files_kept"] = staged.extra["landing_read"]["kept_files"]
    return metadata


def table_asset(spec: TableSpec) -> dg.AssetsDefinition:
    inputs = dependencies(spec)
    check_specs = [
        dg.AssetCheckSpec(
            name,
            asset=list(spec.key),
            description=CHECKS[name].description,
            blocking=CHECKS[name].blocking,
            additional_deps=[list(table(t).key) for t in CHECKS[name].reads if t not in inputs and t != spec.name],
        )
        for name in spec.checks
    ]

    @dg.multi_asset(
        name=spec.name,
        outs={
            spec.name: dg.AssetOut(
                key=list(spec.key),
                group_name=spec.zone,
                description=describe(spec),
                is_required=False,
                kinds={"iceberg", "sql"}
                if spec.zone != "landing" or spec.name == "rejected"
                else {"iceberg", "python"},
                metadata={"dagster/column_schema": column_schema(spec), "dagster/table_name": spec.qualified_name},
            )
        },
        ins={name: dg.AssetIn(key=list(table(name).key)) for name in inputs},
        check_specs=check_specs,
        can_subset=True,
    )
    def _table(
        context: dg.AssetExecutionContext,
        landing: LandingResource,
        lake: LakeResource,
        engine: Engine,
        policy: PolicyResource,
        volume: VolumeResource,
        **upstream: Snapshot,
    ):
        yield from materialize_table(context, spec, landing, lake, engine, policy, volume, upstream)

    _table.__doc__ = describe(spec)
    return _table


TABLE_ASSETS = [table_asset(spec) for spec in TABLES]
