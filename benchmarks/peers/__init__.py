"""Peers of `stedi run` for benchmarks/vs_spark.py: hand-written jobs that build the rubric tables from the
JSON landing straight to Parquet, as a Glue job would (no validation, quarantine, checks or Iceberg)."""
