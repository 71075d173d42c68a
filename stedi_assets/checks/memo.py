"""A check's outcome stands for the next snapshot when everything the check read is the same.

A check reads the lake only through its audit (checks/audit.py): the Parquet files of tables, values its
table's builder recorded (extra), and the consent register, which is made from customer_landing's files. An
Iceberg data file never changes, so the same files hold the same rows. While a check runs in a write's audit,
the audit notes what it reads; the check's outcome is recorded with the snapshot (`outcomes` in its extra),
under a digest of those reads, of the check, table, policy and pseudonym key, and of the project's code and
the versions of DuckDB and pyarrow. The next write of the table asks again for what was read then, as its own
run resolves it; if the digest is the same, the check would read the same and decide the same, so its outcome
stands without reading a row. A run over an unchanged landing then reads no table to check it.

Only checks declared `reusable` (checks/__init__.py) take part: `volume` compares with the snapshot being
replaced, `erasure` reads the erasure register, `distinct_rows` has its own way of reading only added rows.
A check that named files of its own (Audit.query's `files`) is not recorded. A checks-only run (`stedi check`)
never reuses an outcome: it reads every file, which is how it finds a file damaged in place.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .audit import Audit, Outcome

PROJECT = Path(__file__).resolve().parents[1]


@functools.cache
def code_fingerprint() -> str:
    """The project's Python source and the versions of the libraries the checks compute with (DuckDB for their
    SQL, pyarrow for the consent register): an outcome stands only for the code that decided it."""
    import duckdb
    import pyarrow

    digest = hashlib.sha256(f"duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__}".encode())
    for path in sorted(PROJECT.rglob("*.py")):
        digest.update(path.relative_to(PROJECT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _basis(audit: Audit, check: str, reads: dict[str, Any]) -> str:
    from ..privacy.keys import key_id

    what = {
        "check": check,
        "table": audit.spec.name,
        "policy": audit.policy,
        "pseudonym_key": key_id(audit.pseudonym_key) if audit.pseudonym_key is not None else None,
        "code": code_fingerprint(),
        "reads": reads,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def _read_again(audit: Audit, key: str) -> Any:
    """What the read `key` gives in this audit (audit.reads' keys)."""
    first, _, second = key.partition(":")
    if first == "extra":
        return audit.extra.get(second)
    return sorted(audit._files(first, second))  # "<table>:<part>"


def outcome(audit: Audit, check: str, run: Callable[[Audit], Outcome]) -> Outcome:
    """`run(audit)`, or the outcome the snapshot this one replaces recorded for `check` if it read the same."""
    baseline = audit.baseline
    prior = (baseline.extra.get("outcomes") or {}).get(check) if baseline is not None else None
    if prior is not None:
        try:
            again = {key: _read_again(audit, key) for key in prior["reads"]}
        except (KeyError, LookupError):  # a table or part it read is not there now
            again = None
        if again is not None and _basis(audit, check, again) == prior["basis"]:
            audit.memo[check] = prior
            assert baseline is not None
            return Outcome(
                prior["passed"], prior["severity"], {**prior["metadata"], "same_inputs_as_snapshot": baseline.snapshot}
            )
    audit.reads = {}
    try:
        result = run(audit)
    finally:
        reads, audit.reads = audit.reads, None
    if not any(key.startswith("files:") for key in reads):
        audit.memo[check] = {
            "basis": _basis(audit, check, reads),
            "reads": sorted(reads),
            "passed": result.passed,
            "severity": result.severity,
            "metadata": json.loads(json.dumps(dict(result.metadata), default=str)),
        }
    return result
