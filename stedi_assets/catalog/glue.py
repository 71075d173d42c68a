"""Registration in the AWS Glue Data Catalog, so that Athena sees every published table at its
current snapshot. Switched on by config; off, it does nothing."""
from __future__ import annotations

import os

import boto3
import dagster as dg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from ..storage.lake import Lake, Snapshot
from ..zones import table as table_spec
from .ddl import GLUE_TYPES, database

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


class GlueCatalogResource(dg.ConfigurableResource):
    """Keeps a Glue table per published lake table, its location at the current snapshot."""

    enabled: bool = Field(default=False, description="Register published tables in the Glue Data Catalog.")
    database_prefix: str = Field(default="stedi", description="Tables go to <prefix>_<zone> databases.")
    endpoint_url: str | None = Field(default=None, description="Glue endpoint; default AWS_ENDPOINT_URL or AWS.")

    def client(self):
        session = boto3.session.Session()
        return session.client("glue", region_name=session.region_name or "us-east-1",
                              endpoint_url=self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_GLUE")
                              or os.environ.get("AWS_ENDPOINT_URL") or None,
                              config=Config(retries={"max_attempts": 6, "mode": "standard"}))

    def register(self, snapshot: Snapshot, lake: Lake) -> str | None:
        """Create the table, or re-point it at `snapshot` in one UpdateTable call; returns its name."""
        if not self.enabled:
            return None
        spec = table_spec(snapshot.table)
        name = database(spec.zone, self.database_prefix)
        folder = snapshot.files["data"][0].rsplit("/", 1)[0]
        table_input = {
            "Name": spec.name,
            "Description": spec.description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "stedi_snapshot": snapshot.snapshot,
                           "stedi_policy": snapshot.policy or "any"},
            "StorageDescriptor": {
                "Columns": [{"Name": c.name, "Type": GLUE_TYPES[c.type], "Comment": c.description}
                            for c in spec.columns_for(snapshot.policy or "strict")],
                "Location": lake.uri(folder) + "/",
                **PARQUET,
            },
        }
        glue = self.client()
        try:
            try:
                glue.create_database(DatabaseInput={"Name": name, "Description": f"STEDI lakehouse, {spec.zone} zone"})
            except glue.exceptions.AlreadyExistsException:
                pass
            try:
                glue.update_table(DatabaseName=name, TableInput=table_input)
            except glue.exceptions.EntityNotFoundException:
                glue.create_table(DatabaseName=name, TableInput=table_input)
        except (ClientError, BotoCoreError) as err:
            raise dg.Failure(f"cannot register {name}.{spec.name} in the Glue Data Catalog at "
                             f"{glue.meta.endpoint_url}: {err}") from None
        return f"{name}.{spec.name}"
