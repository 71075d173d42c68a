"""How a derived table's next snapshot builds on its current one, where that is provably the same result.

A derived table's snapshot records the snapshot of every input it was built from, and the fingerprint of
what built it (the policy, the rule's SQL and its ephemerals', the output columns, the pseudonym key's id).
Iceberg data files never change, so an input's rows are the rows of its data files. The next build of the
table compares, input by input, the files it is about to read with the files its current snapshot read:

- reused:   every input has the same files and the fingerprint is the same, so the rule's result is the
            current snapshot's data: its files are kept, no query runs;
- appended: one input only gained files (it lost none), every other input is the same, and the rule is
            linear in that input (zones/sql.py `linear_in`): rule(R + D) = rule(R) + rule(D). The rule runs
            over the added files only, and its rows are added to the current files. Or the rule is a
            semi-join on that input (`semi_join_on`): rule(R + D) = rule(R) + (rule(D) EXCEPT ALL rule(R));
            the rule runs over the added files, and its rows that the current files lack are added;
- kept:     rebuilt (below), and the result has exactly the current snapshot's rows, as a bag: the current
            files are kept, so the tables built from this one see an input with the same files (a table of
            at most SAME_ROWS_LIMIT rows; comparing bigger ones would cost more than it saves);
- rebuilt:  anything else: a first build, a changed rule or policy, an input that lost or replaced files
            (an erasure, a changed or vanished landing file, a consent revoked), growth of an input the rule
            is neither linear in nor a semi-join on (a strict consent change), or a current snapshot that an
            erasure made. An erasure takes a person's rows out of each table, by e-mail, serial or pseudonym
            as the table holds them, which is not always the rule's result over the erased inputs
            (machine_learning_curated keeps the pairs that another customer sharing the erased serial has,
            step_trainer_trusted loses them): the rule runs over the whole inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..identity import IDENTITY_KEY_SQL
from ..storage.lake import Lake, Snapshot
from .sql import PART_SUFFIX, SqlRule, linear_in, semi_join_on

REUSED, APPENDED, KEPT, REBUILT = "reused", "appended", "kept", "rebuilt"
ERASED = "erased"  # an erasure's snapshot: the rule's result without a person's rows (privacy/forget.py)
SAME_ROWS_LIMIT = 1_000_000


@dataclass(frozen=True)
class Plan:
    how: str  # REUSED, APPENDED, KEPT or REBUILT
    reason: str  # why, in words (table names only), for the run's log and the snapshot's extra
    kept: list[str] = field(default_factory=list)  # the current snapshot's data files the next one keeps
    rows: int = 0  # their rows
    grown: str | None = None  # APPENDED: the relation that gained files
    added: list[str] = field(default_factory=list)  # APPENDED: its added files, the only ones the rule reads
    # APPENDED to a semi-join: the rule's rows over the added files that the kept files do not hold already
    new_only: bool = False


def fingerprint(rules: list[SqlRule], policy: str, columns: str, key_id: str | None) -> str:
    """What, besides its inputs' rows, decides a rule's result: equal fingerprints and inputs, equal rows. The
    functions the project defines for its rules are part of it (identity_key's SQL; pseudonym() is HMAC-SHA256
    under the key named by `key_id`)."""
    functions = f"identity_key(x) = {IDENTITY_KEY_SQL}"
    text = "\0".join([policy, columns, key_id or "", functions, *(f"{r.name}\0{r.text}" for r in rules)])
    return hashlib.sha256(text.encode()).hexdigest()


def _files_read(lake: Lake, inputs: dict[str, str], relations: list[str]) -> dict[str, set[str]] | None:
    """Each relation's data files in the input snapshots `inputs` (table -> snapshot id); None if one of those
    snapshots is gone (expired by retention)."""
    from . import table

    files: dict[str, set[str]] = {}
    snapshots: dict[str, Snapshot] = {}
    for relation in relations:
        base = relation.removesuffix(PART_SUFFIX)
        part = "data" if base == relation else "rejected"
        if base not in snapshots:
            if base not in inputs:
                return None
            try:
                snapshots[base] = lake.snapshot(table(base).zone, base, inputs[base])
            except LookupError:
                return None
        files[relation] = set(snapshots[base].files.get(part, []))
    return files


def plan(
    lake: Lake,
    rule: SqlRule,
    subrules: list[SqlRule],
    relations: dict[str, list[str]],
    current: Snapshot | None,
    fingerprint_now: str,
) -> Plan:
    """How to build the table whose current snapshot is `current` from `relations` (the lake-relative files of
    each relation the rule reads, from this run's input snapshots)."""
    if current is None:
        return Plan(REBUILT, "first build")
    if current.extra.get("build") == ERASED:
        # erasing a person can change other rows of a rule's result (a shared serial is no longer ambiguous)
        return Plan(REBUILT, "the current snapshot is an erasure's, not the rule's result over its inputs")
    if current.extra.get("fingerprint") != fingerprint_now:
        return Plan(REBUILT, "the rule, policy, columns or pseudonym key differ from the current snapshot's")
    before = _files_read(lake, current.inputs, list(relations))
    if before is None:
        return Plan(REBUILT, "an input snapshot the current one was built from has expired")
    now = {name: set(files) for name, files in relations.items()}
    changed = sorted(name for name in relations if now[name] != before[name])
    kept, rows = list(current.files["data"]), current.rows["data"]
    if not changed:
        return Plan(REUSED, "every input has the files it had", kept, rows)
    if len(changed) > 1:
        return Plan(REBUILT, f"{len(changed)} inputs changed: {', '.join(changed)}")
    grown = changed[0]
    if not before[grown] <= now[grown]:
        return Plan(REBUILT, f"{grown} lost or replaced files")
    if any(grown in s.relations for s in subrules):
        return Plan(REBUILT, f"{grown} grew and a sub-rule reads it")
    if linear_in(rule, grown):
        new_only = False
    elif semi_join_on(rule, grown):
        new_only = True
    else:
        return Plan(REBUILT, f"{grown} grew and the rule is neither linear in it nor a semi-join on it")
    added = [f for f in relations[grown] if f not in before[grown]]
    files = f"{len(added)} file{'' if len(added) == 1 else 's'}"
    return Plan(APPENDED, f"{grown} gained {files}", kept, rows, grown, added, new_only)


def same_rows(lake: Lake, new: list[str], new_rows: int, current: Snapshot | None) -> bool:
    """True if the files `new` (`new_rows` rows) hold exactly the rows of `current`'s data, as a bag."""
    if current is None or current.rows["data"] != new_rows or new_rows > SAME_ROWS_LIMIT:
        return False
    from ..engines.duckdb_engine import attach_parquet, connect

    with connect(lake.store.duckdb_setup()) as con:
        attach_parquet(con, {"new": [lake.uri(f) for f in new], "old": [lake.uri(f) for f in current.files["data"]]})
        if [r[:2] for r in con.execute("DESCRIBE new").fetchall()] != [
            r[:2] for r in con.execute("DESCRIBE old").fetchall()
        ]:
            return False
        # equal counts and nothing of `new` left over after taking `old`'s rows away: equal bags
        left = con.execute("SELECT count(*) FROM (FROM new EXCEPT ALL FROM old)").fetchone()
    return left is not None and left[0] == 0
