"""The committed Athena DDL is what the contract generates: change a column and this fails until
`python -m stedi_assets.catalog.write_ddl` is run and the result committed."""
from __future__ import annotations

from stedi_assets.catalog.ddl import DDL_DIR, render, statements


def test_committed_ddl_matches_the_contract():
    generated = statements()
    committed = {p.relative_to(DDL_DIR).as_posix(): p.read_text() for p in DDL_DIR.rglob("*.sql")}
    assert sorted(committed) == sorted(generated)
    for name, text in generated.items():
        assert committed[name] == text, f"{name} differs from the contract"


def test_ddl_declares_explicit_types_and_locations():
    texts = statements()
    raw = texts["raw/accelerometer_landing.sql"]
    assert "org.openx.data.jsonserde.JsonSerDe" in raw and "`timestamp` bigint" in raw and "`x` double" in raw
    assert "LOCATION '${landing}/accelerometer/'" in raw
    ml = texts["curated/machine_learning_curated.strict.sql"]
    assert "STORED AS PARQUET" in ml and "`customer_id` string" in ml and "serialNumber" not in ml
    assert "serialNumber" in texts["curated/machine_learning_curated.rubric.sql"]
    filled = render(ml, {"lake": "s3://b/p", "curated_database": "stedi_curated",
                         "machine_learning_curated_snapshot": "S1"})
    assert "LOCATION 's3://b/p/curated/machine_learning_curated/snapshots/S1/data/'" in filled
