"""Curated zone: customers with data, and the machine-learning table. Rules: the SQL files beside this module."""

from __future__ import annotations

from ...contract import Column, TableSpec
from ..trusted.schema import CUSTOMER_COLUMNS

CUSTOMER_CURATED = TableSpec(
    zone="curated",
    name="customer_curated",
    description="Consenting customers who have accelerometer data.",
    columns=CUSTOMER_COLUMNS,
    checks=("schema", "consent", "erasure", "row_count", "volume", "unique_customers"),
    at_most="customer_trusted",
)

MACHINE_LEARNING_CURATED = TableSpec(
    zone="curated",
    name="machine_learning_curated",
    description="Step readings paired with accelerometer readings at the same time: the training table.",
    columns=(
        Column(
            "customer_id",
            "string",
            "Keyed pseudonym of the customer: hex HMAC-SHA256 of the identity key.",
            policies=("strict",),
        ),
        Column("sensorReadingTime", "bigint", "Time of the step reading, epoch milliseconds."),
        Column("serialNumber", "string", "Serial number of the device.", pii=True, policies=("rubric",)),
        Column("distanceFromObject", "double", "Distance the Step Trainer measured."),
        Column("timestamp", "bigint", "Time of the accelerometer reading (= sensorReadingTime).", policies=("rubric",)),
        Column("x", "double", "Acceleration along x."),
        Column("y", "double", "Acceleration along y."),
        Column("z", "double", "Acceleration along z."),
    ),
    checks=("schema", "consent", "erasure", "row_count", "volume", "no_pii"),
)

CURATED_TABLES = (CUSTOMER_CURATED, MACHINE_LEARNING_CURATED)
