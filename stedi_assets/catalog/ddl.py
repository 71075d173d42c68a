"""Athena DDL for the raw landing JSON tables, generated from the contract.

Every table of the lake is an Iceberg table that its catalog registers (the Glue Data Catalog on AWS: see
storage/catalog.py), so Athena reads those with no DDL of ours. What still needs DDL is the landing JSON
as it arrives, read in place (OpenX JSON SerDe, explicit column types), as the Udacity project queries it.
The committed files under catalog/ddl/ are these statements with ${...} placeholders; `stedi ddl` fills
them in for a landing root.
"""

from __future__ import annotations

from pathlib import Path

from ..contract import Column, TableSpec
from ..zones.landing.schema import LANDING_TABLES, SOURCE_OF

DDL_DIR = Path(__file__).parent / "ddl"
GLUE_TYPES = {"string": "string", "bigint": "bigint", "double": "double"}
LINEAGE = {"source_file", "source_line"}


def database(zone: str, prefix: str = "stedi") -> str:
    return f"{prefix}_{zone}"


def _columns(columns: tuple[Column, ...]) -> str:
    return ",\n".join(
        f"  `{c.name}` {GLUE_TYPES[c.type]} COMMENT '{c.description.replace(chr(39), '')}'" for c in columns
    )


def raw_landing_ddl(spec: TableSpec) -> str:
    """CREATE TABLE over the raw JSON lines of one landing source (as the Udacity project queries them)."""
    columns = tuple(c for c in spec.columns if c.name not in LINEAGE)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `${{raw_database}}`.`{spec.name}` (\n{_columns(columns)}\n)\n"
        "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
        "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true', 'case.insensitive' = 'true')\n"
        "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
        "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
        f"LOCATION '${{landing}}/{SOURCE_OF[spec.name]}/'\n"
        "TBLPROPERTIES ('classification' = 'json');\n"
    )


def statements() -> dict[str, str]:
    """File name -> DDL of each raw landing table."""
    return {f"raw/{spec.name}.sql": raw_landing_ddl(spec) for spec in LANDING_TABLES}


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text
