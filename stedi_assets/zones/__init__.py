"""The zones of the lake, in graph order. Each zone folder holds its tables' contract
(`schema.py`: columns, descriptions, checks) and, for derived tables, one SQL file per rule."""

from __future__ import annotations

from ..contract import TableSpec
from .curated.schema import CURATED_TABLES
from .landing.schema import LANDING_TABLES, QUARANTINE
from .trusted.schema import TRUSTED_TABLES

TABLES: tuple[TableSpec, ...] = (*LANDING_TABLES, QUARANTINE, *TRUSTED_TABLES, *CURATED_TABLES)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}


class UnknownTable(KeyError):
    """No table of the contract has this name."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError's own str() is the repr of its message, quotes and all


def table(name: str) -> TableSpec:
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise UnknownTable(f"unknown table {name!r}; known: {', '.join(TABLES_BY_NAME)}") from None


def graph_order() -> list[TableSpec]:
    """Every table after the tables its rule reads (TABLES is ordered by zone, not by dependency)."""
    from .sql import dependencies

    ordered: list[TableSpec] = []
    while len(ordered) < len(TABLES):
        done = {t.name for t in ordered}
        ordered += [t for t in TABLES if t.name not in done and set(dependencies(t)) <= done]
    return ordered
