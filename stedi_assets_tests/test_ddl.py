"""The committed Athena DDL is what the contract generates: change a column and this fails until
`python -m stedi_assets.catalog.write_ddl` is run and the result committed. Only the raw landing JSON
tables have DDL: every lake table is an Iceberg table that its catalog registers."""

from __future__ import annotations

from stedi_assets.catalog.ddl import DDL_DIR, statements
from stedi_assets.cli import main


def test_committed_ddl_matches_the_contract():
    generated = statements()
    committed = {p.relative_to(DDL_DIR).as_posix(): p.read_text() for p in DDL_DIR.rglob("*.sql")}
    assert (
        sorted(committed)
        == sorted(generated)
        == ["raw/accelerometer_landing.sql", "raw/customer_landing.sql", "raw/step_trainer_landing.sql"]
    )
    for name, text in generated.items():
        assert committed[name] == text, f"{name} differs from the contract"


def test_stedi_ddl_prints_the_raw_landing_tables_only(capsys):
    assert main(["ddl", "--landing", "s3://b/landing", "--database-prefix", "acme"]) == 0
    out = capsys.readouterr().out
    assert out.count("CREATE EXTERNAL TABLE") == 3 and "${" not in out
    accelerometer = out[out.index("`acme_raw`.`accelerometer_landing`") :].split(";")[0]
    assert "org.openx.data.jsonserde.JsonSerDe" in accelerometer
    assert "`timestamp` bigint" in accelerometer and "`x` double" in accelerometer
    assert "LOCATION 's3://b/landing/accelerometer/'" in accelerometer
    assert "STORED AS PARQUET" not in out and "_trusted" not in out and "_curated" not in out
