"""The lake as Athena sees it. Every lake table is an Iceberg table its catalog registers (on AWS the Glue
Data Catalog is that catalog: storage/catalog.py); this package keeps the DDL of the raw landing JSON tables,
the only ones that still need it, generated from the storage contract (contract.py and the zones' schema.py)."""
