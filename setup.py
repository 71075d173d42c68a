from setuptools import find_packages, setup

setup(
    name="stedi_assets",
    version="0.1.0",
    description="STEDI lakehouse: landing, trusted and curated zones as Dagster assets, Iceberg tables on DuckDB",
    python_requires=">=3.10,<3.15",
    packages=find_packages(exclude=["stedi_assets_tests"]),
    package_data={"stedi_assets": ["zones/*/*.sql", "catalog/ddl/*/*.sql"]},
    install_requires=[
        # The dagster integration libraries pin dagster==1.13.27 exactly; keep the family together.
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-aws==0.29.27",
        "dagster-duckdb==0.29.27",
        # 1.5.5 is the newest DuckDB whose httpfs extension ships on PyPI (no run-time download).
        "duckdb==1.5.5",
        # No pandas: nothing here uses it, and where it is installed pyarrow imports it (0.3 s of every command)
        # along with pyarrow.dataset, which pyiceberg imports to commit.
        "numpy>=1.26",  # the DuckDB landing reader finds line ends with it
        "pyarrow>=18",
        "sqlglot>=30",
        # The signed httpfs binary for duckdb 1.5.5: DuckDB reads and writes s3:// with no download.
        "duckdb-extension-httpfs==1.5.5",
        "boto3>=1.34",
        # Every lake table is an Iceberg table; 0.11.1 installs beside dagster 1.13.27 (pydantic 2) offline.
        "pyiceberg[pyarrow,sql-sqlite]==0.11.1",
    ],
    extras_require={
        # Spark engine (STEDI_ENGINE=spark): the Spark of AWS Glue 5.0 / EMR 7; needs Java 17. PySpark's
        # mapInArrow, which runs the landing reader in the executors, requires pandas (not its [sql] extra,
        # which would hold numpy below 2).
        "spark": ["pyspark==3.5.9", "pandas>=2.2,<3"],
        # A PostgreSQL SQL catalog (STEDI_CATALOG=postgresql+psycopg2://...) for an S3 store without Glue.
        "postgres": ["pyiceberg[sql-postgres]==0.11.1"],
        # playwright drives Debian's chromium (/usr/bin/chromium) in the ui tier; its own browser download is never
        # used. ruff and mypy run in .ci/run after the tests.
        "test": [
            "pytest>=8",
            "moto[server]>=5.1",
            "pyspark==3.5.9",
            "pandas>=2.2,<3",
            "pyiceberg[sql-postgres]==0.11.1",
            "playwright==1.65.2",
            "ruff==0.17.6",
            "mypy==2.4.1",
        ],
    },
    entry_points={"console_scripts": ["stedi=stedi_assets.cli:command_line"]},
)
