"""What the assets ask of an engine, declared once: DuckDBEngine, SparkEngine and GlueEngine implement it.

The assets annotate their `engine` resource with `Engine`; Dagster treats any ConfigurableResource subclass
as a resource parameter and hands over whichever engine is bound to the key (resources.engine_resource or a
test's binding), so asset code never names a concrete engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class EngineOutput:
    rows: int
    files: list[str]  # data files written, relative to the output folder


class Engine(dg.ConfigurableResource, ABC):
    """Computes a table's SELECT over Parquet input files into Parquet files of a staged folder."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The engine's name in the snapshot summary and run tags: duckdb, spark or glue."""

    @abstractmethod
    def select_into(
        self,
        sql: str,
        relations: Mapping[str, Sequence[str]],
        output_dir: str,
        *,
        ephemerals: Sequence[tuple[str, str]] = (),
        pseudonym_key: bytes | None = None,
        setup: Sequence[str] = (),
    ) -> EngineOutput:
        """Write the result of the DuckDB-dialect SELECT `sql` as Parquet files into the folder `output_dir`.

        `relations` maps each table name the SQL reads to its Parquet file URIs; `ephemerals` are
        (name, SELECT) pairs defined as views first, in order (shared sub-rules); `pseudonym_key` binds
        `pseudonym()`; `setup` holds DuckDB statements that reach the lake (engines that reach it
        otherwise ignore them).
        """
