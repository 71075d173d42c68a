"""The lake as Dagster sees it: a resource that stages snapshots and an IO manager that publishes them.

An asset writes its new snapshot through `LakeResource.lake().stage(...)`, audits it, and returns it;
`LakeIOManager.handle_output` then publishes it (moves the current-pointer), and `load_input` hands
downstream assets the published snapshot's manifest, never a half-written one.
"""
from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..catalog.glue import GlueCatalogResource
from .lake import DEFAULT_RETENTION, Lake, StagedSnapshot, TableNotPublished
from .stores import StoreError, open_store


class LakeResource(dg.ConfigurableResource):
    """Where the zones live: a local folder, file:// URI or s3://bucket/prefix."""

    root: str = Field(description="Lake root URI: a local folder or s3://bucket/prefix.")
    retention: int = Field(default=DEFAULT_RETENTION, description="Snapshots kept per table, current included.")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; default AWS_ENDPOINT_URL or AWS.")
    lock_wait_seconds: float = Field(default=300, description="How long a writer waits for another run's table lock.")

    def lake(self) -> Lake:
        try:
            return Lake(open_store(self.root, endpoint_url=self.endpoint_url), retention=self.retention)
        except StoreError as err:
            raise dg.Failure(str(err)) from None


class LakeIOManager(dg.ConfigurableIOManager):
    lake_resource: LakeResource
    catalog: GlueCatalogResource = Field(default_factory=GlueCatalogResource)

    def handle_output(self, context: dg.OutputContext, obj: StagedSnapshot) -> None:
        lake = self.lake_resource.lake()
        published = lake.publish(obj)
        metadata = {"snapshot": published.snapshot, "dagster/uri": lake.uri(f"{obj.zone}/{obj.table}")}
        registered = self.catalog.register(published, lake)
        if registered:
            metadata["glue_table"] = registered
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext):
        zone, table = context.asset_key.path
        try:
            return self.lake_resource.lake().current(zone, table)
        except TableNotPublished as err:
            raise dg.Failure(str(err)) from None
