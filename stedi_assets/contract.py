"""The storage contract: every table's columns, types, descriptions and personal-data tags.

One declaration serves the Dagster column schema shown in the UI, the schema audit that every
snapshot must pass before it is published, and (later) the Athena/Glue DDL. Types are named in a
tiny engine-neutral vocabulary so that DuckDB, Spark and Parquet readers agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

POLICIES = ("strict", "rubric")
DEFAULT_POLICY = "strict"
ZONES = ("landing", "trusted", "curated")

# Engine-neutral type name -> Arrow type (what Parquet files hold).
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
}

# Engine-neutral type name -> what DuckDB's DESCRIBE reports for a Parquet column of that type.
DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE"}

PII = "pii"  # column tag: the column holds personal data (identity, contact or device of a person)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    pii: bool = False
    policies: tuple[str, ...] = POLICIES  # the policies whose table has this column

    def __post_init__(self) -> None:
        if self.type not in ARROW_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class TableSpec:
    """A table of the lake: where it lives, what it holds, which checks audit it."""

    zone: str
    name: str
    description: str
    columns: tuple[Column, ...]
    checks: tuple[str, ...] = ()
    # Named side parts written in the same snapshot (landing tables keep their rejected lines).
    parts: tuple[str, ...] = ("data",)
    part_columns: dict[str, tuple[Column, ...]] = field(default_factory=dict)
    # Row-count sanity: the table never has more rows than this one (a fan-out bug otherwise).
    at_most: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.zone, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.name}"

    @property
    def pii_columns(self) -> frozenset[str]:
        """Every column of any part and policy tagged as personal data."""
        return frozenset(c.name for cols in (self.columns, *self.part_columns.values()) for c in cols if c.pii)

    def columns_for(self, policy: str, part: str = "data") -> tuple[Column, ...]:
        cols = self.columns if part == "data" else self.part_columns[part]
        return tuple(c for c in cols if policy in c.policies)

    def arrow_schema(self, policy: str, part: str = "data") -> pa.Schema:
        return pa.schema([(c.name, ARROW_TYPES[c.type]) for c in self.columns_for(policy, part)])
