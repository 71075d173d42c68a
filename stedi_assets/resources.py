"""The resources every asset is built from, chosen in one place by the lake's location.

As in dagster's project_fully_featured, each deployment is a dict with the same keys, so asset
code never asks where it runs.
"""

from __future__ import annotations

from typing import Literal, cast

import dagster as dg
from pydantic import Field

from . import settings
from .engines.base import Engine
from .engines.duckdb_engine import DuckDBEngine
from .privacy import keys
from .storage.io_manager import LakeIOManager, LakeResource
from .storage.lake import Lake
from .storage.stores import StoreError, is_s3, open_store
from .zones.landing.reader import SUFFIXES
from .zones.landing.schema import SOURCE_OF


class LandingResource(dg.ConfigurableResource):
    """The landing root: customer/, accelerometer/ and step_trainer/ folders of JSON-lines files."""

    root: str = Field(description="Landing root URI: a local folder or s3://bucket/prefix.")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint; default AWS_ENDPOINT_URL or AWS."
    )

    def store(self):
        try:
            store = open_store(self.root, endpoint_url=self.endpoint_url)
            present = store.is_dir()
        except StoreError as err:
            raise dg.Failure(str(err)) from None
        if not present:
            raise dg.Failure(f"landing folder {self.root} does not exist")
        if not any(p.endswith(SUFFIXES) for s in SOURCE_OF.values() for p in store.list_files(s)):
            raise dg.Failure(
                f"landing folder {self.root} is empty: no .json/.jsonl(.gz) files under "
                f"{', '.join(s + '/' for s in SOURCE_OF.values())}"
            )
        return store


class PolicyResource(dg.ConfigurableResource):
    """Which zone rules build trusted and curated: strict (privacy first, default) or rubric."""

    name: Literal["strict", "rubric"] = Field(default="strict", description="strict or rubric")

    def pseudonym_key(self, lake: Lake) -> bytes:
        """The key of the ML table's customer pseudonyms: STEDI_PSEUDONYM_KEY (required for a lake on
        S3), else a key generated once in a local lake's private area."""
        try:
            return keys.pseudonym_key(lake)
        except keys.MissingKey as err:
            raise dg.Failure(str(err)) from None


class VolumeResource(dg.ConfigurableResource):
    """How far a write may shrink a table before the blocking `volume` check stops it, and the override.

    In the launchpad: `resources: {volume: {config: {allow_shrink: true}}}` publishes a shrink the check
    would block (it then warns); `stedi run --allow-shrink` does the same."""

    max_shrink: float = Field(
        default=settings.DEFAULT_MAX_SHRINK,
        ge=0.0,
        le=1.0,
        description="Share of its published rows a table may lose in one write (default $STEDI_MAX_SHRINK or 0.5).",
    )
    allow_shrink: bool = Field(
        default=False,
        description="Publish even when a table shrinks beyond max_shrink or a landing source has no file left.",
    )


def engine_resource(name: str | None = None) -> Engine:
    """The engine that computes the derived tables: STEDI_ENGINE=duckdb (default) or spark; the one place
    it is chosen. Spark's master comes from STEDI_SPARK_MASTER (local[*] by default, or spark://host:7077),
    its driver's heap from STEDI_SPARK_DRIVER_MEMORY."""
    if settings.checked_engine(name or settings.engine()) == "spark":
        from .engines.spark_engine import SparkEngine  # pyspark is the optional [spark] extra

        memory = settings.spark_driver_memory()
        conf = {"spark.driver.memory": memory} if memory else {}
        return SparkEngine(master=settings.spark_master(), spark_conf=conf)
    return DuckDBEngine(landing_reader=cast(Literal["duckdb", "python"], settings.landing_reader()))


def _resources(
    landing: str | None,
    lake: str | None,
    policy: str | None,
    engine: str | None = None,
    allow_shrink: bool = False,
) -> dict:
    lake_resource = LakeResource(root=lake or settings.lake_uri(), catalog=settings.catalog())
    return {
        "landing": LandingResource(root=landing or settings.landing_uri()),
        "lake": lake_resource,
        "io_manager": LakeIOManager(lake_resource=lake_resource),
        "engine": engine_resource(engine),
        # checked_policy accepts only the POLICIES names, which are exactly the field's Literal values
        "policy": PolicyResource(
            name=cast(Literal["strict", "rubric"], settings.checked_policy(policy or settings.policy()))
        ),
        "volume": VolumeResource(max_shrink=settings.max_shrink(), allow_shrink=allow_shrink),
    }


def local_resources(
    landing: str | None = None,
    lake: str | None = None,
    policy: str | None = None,
    engine: str | None = None,
    allow_shrink: bool = False,
) -> dict:
    """A laptop: lake and landing are folders (or any store URI); the catalog is embedded in the lake."""
    return _resources(landing, lake, policy, engine, allow_shrink)


def aws_resources(
    landing: str | None = None,
    lake: str | None = None,
    policy: str | None = None,
    engine: str | None = None,
    allow_shrink: bool = False,
) -> dict:
    """AWS: the lake on S3, its tables in the Glue Data Catalog (STEDI_CATALOG defaults to glue)."""
    root = lake or settings.lake_uri()
    if not is_s3(root):
        raise settings.SettingError(f"STEDI_DEPLOYMENT=aws needs an s3:// lake, not {root!r} (set STEDI_LAKE)")
    return _resources(landing, root, policy, engine, allow_shrink)


RESOURCES_BY_DEPLOYMENT = {"local": local_resources, "aws": aws_resources}


def resources(**overrides) -> dict:
    """The resources of the deployment named by STEDI_DEPLOYMENT (default local)."""
    return RESOURCES_BY_DEPLOYMENT[settings.deployment()](**overrides)
