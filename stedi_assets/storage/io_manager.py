"""The lake as Dagster sees it: a resource that stages snapshots and an IO manager that publishes them.

An asset writes its new snapshot through `LakeResource.lake().stage(...)`, audits it, and returns it;
`LakeIOManager.handle_output` then publishes it (moves the current-pointer), and `load_input` hands
downstream assets the published snapshot's manifest, never a half-written one.
"""
from __future__ import annotations

import dagster as dg
from pydantic import Field

from .lake import DEFAULT_RETENTION, Lake, StagedSnapshot, TableNotPublished
from .stores import open_store


class LakeResource(dg.ConfigurableResource):
    """Where the zones live: a local folder or file:// URI."""

    root: str = Field(description="Lake root URI: a local folder.")
    retention: int = Field(default=DEFAULT_RETENTION, description="Snapshots kept per table, current included.")

    def lake(self) -> Lake:
        return Lake(open_store(self.root), retention=self.retention)


class LakeIOManager(dg.ConfigurableIOManager):
    lake_resource: LakeResource

    def handle_output(self, context: dg.OutputContext, obj: StagedSnapshot) -> None:
        lake = self.lake_resource.lake()
        published = lake.publish(obj)
        context.add_output_metadata({
            "snapshot": published.snapshot,
            "dagster/uri": lake.uri(f"{obj.zone}/{obj.table}"),
        })

    def load_input(self, context: dg.InputContext):
        zone, table = context.asset_key.path
        try:
            return self.lake_resource.lake().current(zone, table)
        except TableNotPublished as err:
            raise dg.Failure(str(err)) from None
