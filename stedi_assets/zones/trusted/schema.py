"""Trusted zone: consent enforced, defects handled. Rules: the SQL files beside this module."""

from __future__ import annotations

from ...contract import Column, TableSpec
from ..landing.schema import ACCELEROMETER_LANDING, CUSTOMER_LANDING, STEP_TRAINER_LANDING


def _without_lineage(spec: TableSpec) -> tuple[Column, ...]:
    return tuple(c for c in spec.columns if c.name not in ("source_file", "source_line"))


CUSTOMER_COLUMNS = _without_lineage(CUSTOMER_LANDING)

CUSTOMER_KEY = Column(
    "customer_key",
    "string",
    "Identity key lower(trim(email)) of the customer the reading is attributed to.",
    pii=True,
    policies=("strict",),
)

CUSTOMER_TRUSTED = TableSpec(
    zone="trusted",
    name="customer_trusted",
    description="Customers who agreed to share their data for research.",
    columns=CUSTOMER_COLUMNS,
    checks=("schema", "consent", "erasure", "row_count", "volume", "unique_customers"),
    at_most="customer_landing",
)

ACCELEROMETER_TRUSTED = TableSpec(
    zone="trusted",
    name="accelerometer_trusted",
    description="Accelerometer readings of customers who agreed to research use.",
    columns=_without_lineage(ACCELEROMETER_LANDING),
    checks=("schema", "consent", "erasure", "row_count", "volume", "distinct_rows"),
    at_most="accelerometer_landing",
)

STEP_TRAINER_TRUSTED = TableSpec(
    zone="trusted",
    name="step_trainer_trusted",
    description="Step Trainer readings of curated customers' devices.",
    columns=(*_without_lineage(STEP_TRAINER_LANDING), CUSTOMER_KEY),
    checks=("schema", "consent", "erasure", "row_count", "volume", "distinct_rows", "ambiguous_readings"),
    at_most="step_trainer_landing",
)

TRUSTED_TABLES = (CUSTOMER_TRUSTED, ACCELEROMETER_TRUSTED, STEP_TRAINER_TRUSTED)
