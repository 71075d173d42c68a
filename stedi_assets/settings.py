"""Settings from the environment (STEDI_LANDING, STEDI_LAKE, STEDI_CATALOG, STEDI_POLICY, STEDI_ENGINE,
STEDI_MAX_SHRINK, …).

Every setting also has a Dagster config field or a CLI flag; the environment supplies the defaults.
"""

from __future__ import annotations

import importlib
import os
import re

from .contract import DEFAULT_POLICY, POLICIES


class SettingError(ValueError):
    """A setting has a value the pipeline cannot use; the message is one clear line."""


def landing_uri() -> str:
    return os.environ.get("STEDI_LANDING", "landing")


def lake_uri() -> str:
    return os.environ.get("STEDI_LAKE", "lake")


def one_of(what: str, name: str, choices: tuple[str, ...]) -> str:
    """`name` if it is one of `choices`, else a one-line SettingError naming `what` and the choices."""
    if name not in choices:
        raise SettingError(f"unknown {what} {name!r}: choose {' or '.join(choices)}")
    return name


def checked_policy(name: str) -> str:
    return one_of("policy", name, POLICIES)


def policy() -> str:
    return checked_policy(os.environ.get("STEDI_POLICY", DEFAULT_POLICY))


ENGINES = ("duckdb", "spark")


def checked_engine(name: str) -> str:
    return one_of("engine", name, ENGINES)


def engine() -> str:
    return checked_engine(os.environ.get("STEDI_ENGINE", "duckdb"))


LANDING_READERS = ("duckdb", "python")


def landing_reader() -> str:
    """STEDI_LANDING_READER: duckdb (default; used when the engine is DuckDB) or python (the reference reader)."""
    return one_of("STEDI_LANDING_READER", os.environ.get("STEDI_LANDING_READER", "duckdb"), LANDING_READERS)


DISTRIBUTION = "stedi_assets"  # setup.py's name: its extras install what the optional engines and catalogs need
ENGINE_PACKAGES = {"spark": "pyspark"}  # engine -> the package its extra (of the same name) installs


def install_hint(extra: str) -> str:
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def require_engine(name: str) -> None:
    """Refuse, in one line naming the extra to install, an engine whose optional package cannot be imported."""
    package = ENGINE_PACKAGES.get(name)
    if package is None:
        return
    try:
        importlib.import_module(package)
    except ImportError:
        raise SettingError(f"STEDI_ENGINE={name} needs {package}: {install_hint(name)}") from None


def catalog() -> str | None:
    """STEDI_CATALOG: sqlite (embedded, default for a local lake), glue (default on AWS), or a SQLAlchemy URI."""
    return os.environ.get("STEDI_CATALOG") or None


def spark_master() -> str:
    return os.environ.get("STEDI_SPARK_MASTER", "local[*]")


def spark_driver_memory() -> str | None:
    """STEDI_SPARK_DRIVER_MEMORY: the heap of Spark's driver (spark.driver.memory, e.g. 6g); with a local
    master the executors share it. Unset: Spark's default (1g)."""
    value = os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "").strip()
    if value and not re.fullmatch(r"[0-9]+[kmgt]?", value.lower()):
        raise SettingError(f"STEDI_SPARK_DRIVER_MEMORY={value!r}: give a size such as 4g or 512m")
    return value or None


DEPLOYMENTS = ("local", "aws")


def deployment() -> str:
    return one_of("STEDI_DEPLOYMENT", os.environ.get("STEDI_DEPLOYMENT", "local"), DEPLOYMENTS)


DEFAULT_MAX_SHRINK = 0.5


def checked_share(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise SettingError(f"{name} must be a share between 0 and 1 (e.g. 0.5), not {text!r}")
    return value


def max_shrink() -> float:
    """STEDI_MAX_SHRINK: the share of its published rows a table may lose in one write before the blocking
    volume check stops it (0.5: a table may halve, not more)."""
    text = os.environ.get("STEDI_MAX_SHRINK")
    return DEFAULT_MAX_SHRINK if text is None or not text.strip() else checked_share("STEDI_MAX_SHRINK", text)


DEFAULT_PROGRESS_SECONDS = 10.0


def progress_seconds() -> float:
    """STEDI_PROGRESS_SECONDS: seconds between a running step's progress lines when stderr is not a terminal."""
    text = os.environ.get("STEDI_PROGRESS_SECONDS")
    if text is None or not text.strip():
        return DEFAULT_PROGRESS_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise SettingError(f"STEDI_PROGRESS_SECONDS must be a number of seconds (e.g. 10), not {text!r}")
    return value


DEFAULT_DUCKDB_MEMORY = "1GB"


def duckdb_memory_limit() -> str:
    """STEDI_DUCKDB_MEMORY_LIMIT: the memory each of the project's DuckDB databases may hold before it spills
    to disk (DuckDB's own default is 80 % of the machine's memory, per database)."""
    text = (os.environ.get("STEDI_DUCKDB_MEMORY_LIMIT") or "").strip()
    if not text:
        return DEFAULT_DUCKDB_MEMORY
    import re

    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text, re.IGNORECASE):
        raise SettingError(f"STEDI_DUCKDB_MEMORY_LIMIT must be an amount of memory (e.g. 1GB, 512MB), not {text!r}")
    return text


def flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")
