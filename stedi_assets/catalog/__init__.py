"""The lake as Athena and the Glue Data Catalog see it: DDL and table registration, both generated
from the storage contract (contract.py and the zones' schema.py)."""
