"""A plain PySpark job (local[*]) building the rubric tables the way a hand-written Glue job would.

    python -m peers.rubric_pyspark LANDING OUT [--driver-memory 2g]

spark.read.json of each landing source (schema inferred, every *.json file under its folder), the SQL of
rubric_sql.py, each table written as Parquet to OUT/<table>/; the next tables read what was written before
them, as separate Glue jobs over the catalog would. No validation, no checks. Prints the tables' row
counts as one JSON object. The JVM is stopped and waited for before exit, so its CPU time is the process's.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pyspark import SparkContext
from pyspark.sql import DataFrame, SparkSession

from peers.rubric_sql import DERIVED, LANDING


def build(spark: SparkSession, landing: Path, out: Path) -> dict[str, int]:
    def publish(table: str, frame: DataFrame) -> int:
        target = str(out / table)
        frame.write.mode("overwrite").parquet(target)
        written = spark.read.parquet(target)
        written.createOrReplaceTempView(table)
        return written.count()

    reader = spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.json")
    counts = {table: publish(table, reader.json(str(landing / folder))) for table, folder in LANDING.items()}
    counts.update({table: publish(table, spark.sql(select)) for table, select in DERIVED.items()})
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--driver-memory", default="2g", help="spark.driver.memory (local mode: all of Spark)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else Spark binds a public address and warns
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("rubric-pyspark")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    counts = build(spark, args.landing.resolve(), args.out.resolve())
    spark.stop()
    jvm = SparkContext._gateway.proc  # type: ignore[union-attr]
    jvm.stdin.close()  # the gateway JVM exits at end of input
    jvm.wait()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
