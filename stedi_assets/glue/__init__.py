"""AWS Glue: `entry.py` is the Glue 5.0 job script (Spark only, no Dagster); `pipes.py` launches it from
Dagster through dagster-aws's PipesGlueClient. Nothing here is imported unless the Glue path is used."""
