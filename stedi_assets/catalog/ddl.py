"""Athena DDL for every table, generated from the contract.

Raw landing tables read the JSON files in place (OpenX JSON SerDe, explicit column types); every
published table reads the Parquet files of its current snapshot. The committed files under
catalog/ddl/ are these statements with ${...} placeholders; `stedi ddl` fills them in for a lake.
"""
from __future__ import annotations

from pathlib import Path

from ..contract import POLICIES, Column, TableSpec
from ..zones import TABLES
from ..zones.landing.schema import LANDING_TABLES, SOURCE_OF

DDL_DIR = Path(__file__).parent / "ddl"
GLUE_TYPES = {"string": "string", "bigint": "bigint", "double": "double"}
LINEAGE = {"source_file", "source_line"}


def database(zone: str, prefix: str = "stedi") -> str:
    return f"{prefix}_{zone}"


def _columns(columns: tuple[Column, ...]) -> str:
    return ",\n".join(f"  `{c.name}` {GLUE_TYPES[c.type]} COMMENT '{c.description.replace(chr(39), '')}'"
                      for c in columns)


def raw_landing_ddl(spec: TableSpec) -> str:
    """CREATE TABLE over the raw JSON lines of one landing source (as the Udacity project queries them)."""
    columns = tuple(c for c in spec.columns if c.name not in LINEAGE)
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS `${{raw_database}}`.`{spec.name}` (\n{_columns(columns)}\n)\n"
            "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
            "WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true', 'case.insensitive' = 'true')\n"
            "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
            "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
            f"LOCATION '${{landing}}/{SOURCE_OF[spec.name]}/'\n"
            "TBLPROPERTIES ('classification' = 'json');\n")


def parquet_ddl(spec: TableSpec, policy: str | None) -> str:
    """CREATE TABLE over the current snapshot of a published table (re-pointed at each publish)."""
    columns = spec.columns_for(policy or POLICIES[0])
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS `${{{spec.zone}_database}}`.`{spec.name}` (\n"
            f"{_columns(columns)}\n)\n"
            f"COMMENT '{spec.description.replace(chr(39), '')}'\n"
            "STORED AS PARQUET\n"
            f"LOCATION '${{lake}}/{spec.zone}/{spec.name}/snapshots/${{{spec.name}_snapshot}}/data/'\n"
            f"TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = '{policy or 'any'}');\n")


def statements() -> dict[str, str]:
    """File name -> DDL: raw landing tables, then every published table (one file per policy where
    the columns differ)."""
    files = {f"raw/{spec.name}.sql": raw_landing_ddl(spec) for spec in LANDING_TABLES}
    for spec in TABLES:
        if len({spec.columns_for(p) for p in POLICIES}) == 1:
            files[f"{spec.zone}/{spec.name}.sql"] = parquet_ddl(spec, None)
        else:
            files.update({f"{spec.zone}/{spec.name}.{p}.sql": parquet_ddl(spec, p) for p in POLICIES})
    return files


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text
