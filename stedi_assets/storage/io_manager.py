"""The lake as Dagster sees it: a resource that opens the lake and an IO manager that commits to it.

An asset stages its new data files through `LakeResource.lake().stage(...)`, audits them, and returns the
staged write; `LakeIOManager.handle_output` then commits it (one Iceberg commit per table part), applies
retention, and, when the run has committed everything it selected, tags the consistent lake it built.
`load_input` hands a downstream asset the snapshot its run pinned (see storage/runs.py), never one that
another run committed meanwhile, nor a staged write.
"""

from __future__ import annotations

import time

import dagster as dg
from pydantic import Field

from .lake import CommitConflict, Lake, Snapshot, StagedWrite, TableNotPublished, open_lake, part_table
from .maintenance import Retention, apply_retention
from .runs import close_run, default_view, pinned, resolve_run, trim_run_tags, view_of_run
from .stores import StoreError


class LakeResource(dg.ConfigurableResource):
    """Where the zones live (a local folder or s3://bucket/prefix) and which Iceberg catalog tracks them."""

    root: str = Field(description="Lake root URI: a local folder or s3://bucket/prefix.")
    catalog: str | None = Field(
        default=None,
        description=(
            "Iceberg catalog: sqlite (embedded in a local lake), glue, or a SQLAlchemy URI; default $STEDI_CATALOG."
        ),
    )
    keep_snapshots: int = Field(
        default=5, description="Newest snapshots each table keeps (current and run-tagged always)."
    )
    max_snapshot_age_days: float = Field(
        default=7.0, description="Snapshots older than this expire (unless current or tagged)."
    )
    orphan_age_seconds: float = Field(
        default=3600,
        description=("Uncommitted files older than this are removed (younger ones may belong to a running writer)."),
    )
    as_of: str | None = Field(
        default=None,
        description=(
            "Checks-only runs audit this complete run's lake (id or prefix); default the latest complete run."
        ),
    )

    def lake(self) -> Lake:
        try:
            return open_lake(self.root, self.catalog)
        except StoreError as err:
            raise dg.Failure(str(err)) from None

    @property
    def retention(self) -> Retention:
        return Retention(self.keep_snapshots, self.max_snapshot_age_days, self.orphan_age_seconds)

    def view(self, lake: Lake) -> dict[str, Snapshot]:
        """The consistent lake a checks-only run audits."""
        try:
            return view_of_run(lake, resolve_run(lake, self.as_of)) if self.as_of else default_view(lake)[1]
        except LookupError as err:
            raise dg.Failure(str(err)) from None


def materialized_tables(step_context) -> set[str]:
    """The tables this run materializes (its job's selection; empty for a checks-only run)."""
    return {key.path[-1] for key in step_context.job_def.asset_layer.selected_asset_keys}


def run_started_ms(instance, run_id: str) -> int | None:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return None
    started = record.start_time or record.create_timestamp.timestamp()
    return int(started * 1000)


class LakeIOManager(dg.ConfigurableIOManager):
    lake_resource: LakeResource

    def handle_output(self, context: dg.OutputContext, obj: StagedWrite) -> None:
        from ..zones import table

        lake = self.lake_resource.lake()
        spec = table(obj.table)
        try:
            committed = lake.commit(obj, context.run_id, obj.extra.get("engine"), set(spec.pii_columns))
        except CommitConflict as err:
            lake.discard(obj)
            raise dg.Failure(str(err)) from None
        metadata = {
            "snapshot_id": committed.snapshot,
            "dagster/uri": lake.uri(f"{obj.zone}/{obj.table}"),
            "iceberg_table": ".".join(lake.identifier(obj.zone, obj.table)),
        }
        retention = self.lake_resource.retention
        if close_run(lake, context.run_id, materialized_tables(context.step_context)) is not None:
            metadata["lake_tag"] = f"run-{context.run_id}"
            trim_run_tags(lake, retention.keep, retention.max_age_days, int(time.time() * 1000))
        for part in obj.schemas:
            apply_retention(lake, obj.zone, part_table(obj.table, part), retention)
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> Snapshot:
        _, table = context.asset_key.path
        lake = self.lake_resource.lake()
        run = context.step_context.dagster_run
        try:
            if context.step_context.op_def.name not in materialized_tables(context.step_context):  # checks only
                view = self.lake_resource.view(lake)
                if table not in view:
                    raise TableNotPublished(f"{'.'.join(context.asset_key.path)} has no committed snapshot")
                return view[table]
            return pinned(lake, table, run.run_id, run_started_ms(context.instance, run.run_id))
        except TableNotPublished as err:
            raise dg.Failure(str(err)) from None
