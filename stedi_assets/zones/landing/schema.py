"""Landing zone: every valid landing line as a typed row (no de-duplication), and the quarantine.

Columns keep the names of the JSON fields. `source_file`/`source_line` say where each row came from:
the strict policy's tie-break needs them, and so does anyone tracing a value back to its file.
"""

from __future__ import annotations

from ...contract import Column, TableSpec

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


def landing_table(name: str, description: str, columns: tuple[Column, ...]) -> TableSpec:
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
        Column("customerName", "string", "Full name of the customer.", pii=True),
        Column("email", "string", "E-mail address; lower(trim(email)) is the identity key of the customer.", pii=True),
        Column("phone", "string", "Phone number.", pii=True),
        Column("birthDay", "string", "Birthday, YYYY-MM-DD.", pii=True),
        Column("serialNumber", "string", "Serial number of the Step Trainer of the customer.", pii=True),
        Column("registrationDate", "bigint", "Registration time, epoch milliseconds."),
        Column("lastUpdateDate", "bigint", "Time of this record, epoch milliseconds; the latest record wins."),
        Column(
            "shareWithResearchAsOfDate",
            "bigint",
            "Research consent since (epoch ms); null means no consent to research use.",
        ),
        Column("shareWithPublicAsOfDate", "bigint", "Consent to public sharing since (epoch ms), or null."),
        Column("shareWithFriendsAsOfDate", "bigint", "Consent to sharing with friends since (epoch ms), or null."),
    ),
)

ACCELEROMETER_LANDING = landing_table(
    "accelerometer_landing",
    "Accelerometer readings from the mobile app, one typed row per valid landing line.",
    (
        Column("user", "string", "E-mail of the app user who took the reading.", pii=True),
        Column("timestamp", "bigint", "Reading time, epoch milliseconds (legacy key timeStamp accepted)."),
        Column("x", "double", "Acceleration along x."),
        Column("y", "double", "Acceleration along y."),
        Column("z", "double", "Acceleration along z."),
    ),
)

STEP_TRAINER_LANDING = landing_table(
    "step_trainer_landing",
    "Distance readings from Step Trainer devices, one typed row per valid landing line.",
    (
        Column("sensorReadingTime", "bigint", "Reading time, epoch milliseconds."),
        Column("serialNumber", "string", "Serial number of the device.", pii=True),
        Column("distanceFromObject", "double", "Distance the sensor measured."),
    ),
)

LANDING_TABLES = (CUSTOMER_LANDING, ACCELEROMETER_LANDING, STEP_TRAINER_LANDING)

# The source name of each landing table: its folder under the landing root.
SOURCE_OF = {
    "customer_landing": "customer",
    "accelerometer_landing": "accelerometer",
    "step_trainer_landing": "step_trainer",
}

QUARANTINE = TableSpec(
    zone="landing",
    name="rejected",
    description="The quarantine: every landing line that failed validation, with file, line, raw text and reason.",
    columns=REJECTED_COLUMNS,
    # no volume check: a quarantine that shrinks is good news (its source tables' volume checks see a lost file)
    checks=("quarantine_complete", "schema", "erasure"),
)
