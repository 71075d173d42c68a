"""Landing zone: every valid landing line as a typed row (no de-duplication), and the quarantine.

Columns keep the names of the JSON fields. `source_file`/`source_line` say where each row came from:
the strict policy's tie-break needs them, and so does anyone tracing a value back to its file.
The JSON columns (`SourceColumn`) also say how a line's field is validated: the validator's field list
(validation.FIELDS) is derived from them, so the contract and the rules cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import Column, TableSpec


@dataclass(frozen=True)
class SourceColumn(Column):
    """A column read from the JSON field of its name; its type is the kind of JSON value the field must hold."""

    required: bool = False  # a line whose field is absent or null is rejected
    nonblank: bool = False  # names a person or a device: a string empty after trimming spaces is rejected
    legacy_key: str | None = None  # the key older writers used, read when the field's own key is absent


LINEAGE = (
    Column("source_file", "string", "Landing file the line came from, relative to the landing root."),
    Column("source_line", "bigint", "Physical line number in that file, counting from 1."),
)

REJECTED_COLUMNS = (
    Column("source", "string", "Landing source: customer, accelerometer or step_trainer."),
    *LINEAGE,
    Column("raw", "string", "The line as read (invalid UTF-8 shown with backslash escapes).", pii=True),
    Column("reason", "string", "Why the line was rejected."),
)


def landing_table(name: str, description: str, columns: tuple[SourceColumn, ...]) -> TableSpec:
    """A landing table: the source's typed columns plus lineage, with its rejected lines beside it."""
    return TableSpec(
        zone="landing",
        name=name,
        description=description,
        columns=(*columns, *LINEAGE),
        checks=("reconciliation", "schema", "row_count", "erasure", "volume"),
        parts=("data", "rejected"),
        part_columns={"rejected": REJECTED_COLUMNS},
    )


CUSTOMER_LANDING = landing_table(
    "customer_landing",
    "Customer records from the STEDI web site, one typed row per valid landing line.",
    (
        SourceColumn("customerName", "string", "Full name of the customer.", pii=True),
        SourceColumn(
            "email",
            "string",
            "E-mail address; lower(trim(email)) is the identity key of the customer.",
            pii=True,
            required=True,
            nonblank=True,
        ),
        SourceColumn("phone", "string", "Phone number.", pii=True),
        SourceColumn("birthDay", "string", "Birthday, YYYY-MM-DD.", pii=True),
        SourceColumn(
            "serialNumber",
            "string",
            "Serial number of the Step Trainer of the customer.",
            pii=True,
            required=True,
            nonblank=True,
        ),
        SourceColumn("registrationDate", "bigint", "Registration time, epoch milliseconds.", required=True),
        SourceColumn(
            "lastUpdateDate",
            "bigint",
            "Time of this record, epoch milliseconds; the latest record wins.",
            required=True,
        ),
        SourceColumn(
            "shareWithResearchAsOfDate",
            "bigint",
            "Research consent since (epoch ms); null means no consent to research use.",
        ),
        SourceColumn("shareWithPublicAsOfDate", "bigint", "Consent to public sharing since (epoch ms), or null."),
        SourceColumn(
            "shareWithFriendsAsOfDate", "bigint", "Consent to sharing with friends since (epoch ms), or null."
        ),
    ),
)

ACCELEROMETER_LANDING = landing_table(
    "accelerometer_landing",
    "Accelerometer readings from the mobile app, one typed row per valid landing line.",
    (
        SourceColumn(
            "user", "string", "E-mail of the app user who took the reading.", pii=True, required=True, nonblank=True
        ),
        SourceColumn(
            "timestamp",
            "bigint",
            "Reading time, epoch milliseconds (legacy key timeStamp accepted).",
            required=True,
            legacy_key="timeStamp",
        ),
        SourceColumn("x", "double", "Acceleration along x.", required=True),
        SourceColumn("y", "double", "Acceleration along y.", required=True),
        SourceColumn("z", "double", "Acceleration along z.", required=True),
    ),
)

STEP_TRAINER_LANDING = landing_table(
    "step_trainer_landing",
    "Distance readings from Step Trainer devices, one typed row per valid landing line.",
    (
        SourceColumn("sensorReadingTime", "bigint", "Reading time, epoch milliseconds.", required=True),
        SourceColumn("serialNumber", "string", "Serial number of the device.", pii=True, required=True, nonblank=True),
        SourceColumn("distanceFromObject", "double", "Distance the sensor measured.", required=True),
    ),
)

LANDING_TABLES = (CUSTOMER_LANDING, ACCELEROMETER_LANDING, STEP_TRAINER_LANDING)

# The source name of each landing table: its folder under the landing root.
SOURCE_OF = {
    "customer_landing": "customer",
    "accelerometer_landing": "accelerometer",
    "step_trainer_landing": "step_trainer",
}


def source_columns(spec: TableSpec) -> tuple[SourceColumn, ...]:
    """The columns of a landing table read from its JSON lines, in column order (lineage excluded)."""
    return tuple(c for c in spec.columns if isinstance(c, SourceColumn))


QUARANTINE = TableSpec(
    zone="landing",
    name="rejected",
    description="The quarantine: every landing line that failed validation, with file, line, raw text and reason.",
    columns=REJECTED_COLUMNS,
    # no volume check: a quarantine that shrinks is good news (its source tables' volume checks see a lost file)
    checks=("quarantine_complete", "schema", "erasure"),
)
