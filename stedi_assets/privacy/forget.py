"""Right to erasure: remove people from the landing files, every table, the quarantine and every
retained snapshot, physically, and remember them (as keyed hashes only) so that data re-delivered
for them is dropped at landing.

A person is named by e-mail; their identity key is lower(trim(email)) and their device serials are
those of their customer records. Their step readings go with them: every reading of their serials.
"""
from __future__ import annotations

import gzip
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..identity import identity_key, pseudonym
from ..engines.duckdb_engine import attach_parquet, connect
from ..storage.lake import Lake, Snapshot
from ..zones import TABLES
from ..zones.landing.reader import BOM, landing_files, parse_line
from ..zones.landing.schema import SOURCE_OF
from .keys import key_id, pseudonym_key
from .register import SUBJECT, ErasureRegister, subject_columns


@dataclass
class ForgetReport:
    people: int = 0
    serials: int = 0
    landing_lines_removed: int = 0
    landing_files_rewritten: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)      # "zone.table" -> rows, all snapshots
    snapshots_dropped: list[str] = field(default_factory=list)


class _Subjects:
    def __init__(self, keys: set[str], serials: set[str]) -> None:
        self.keys, self.serials = keys, serials
        self.needles = sorted({*keys, *(s.lower() for s in serials)})

    def owns(self, source: str, values: tuple) -> bool:
        kind, name = SUBJECT[source]
        from ..zones.landing.validation import FIELDS
        value = values[[k for k, _, _ in FIELDS[source]].index(name)]
        return identity_key(value) in self.keys if kind == "identity" else value in self.serials

    def mentioned_in(self, text: str) -> bool:
        lowered = text.lower()
        return any(n in lowered for n in self.needles)


def forget(lake: Lake, landing_store, emails: list[str]) -> ForgetReport:
    keys = {identity_key(e) for e in emails if identity_key(e)}
    if not keys:
        raise ValueError("no e-mail to forget")
    serials = _serials_of(landing_store, lake, keys)
    register = ErasureRegister.load(lake, for_update=True)
    for key in keys:
        register.add(key, serials.get(key, set()))
    register.save(lake)          # first: from now on their data is dropped at landing, whatever follows
    subjects = _Subjects(keys, set().union(*serials.values()) if serials else set())
    report = ForgetReport(people=len(keys), serials=len(subjects.serials))
    rewritten = _rewrite_landing(landing_store, subjects, report)
    _rewrite_snapshots(lake, subjects, rewritten, report)
    return report


def _serials_of(landing_store, lake: Lake, keys: set[str]) -> dict[str, set[str]]:
    """Serials of the customer records of `keys`, from the landing files and the landing table."""
    found: dict[str, set[str]] = {}
    for values in _customer_records(landing_store):
        email, serial = values[1], values[4]
        if identity_key(email) in keys:
            found.setdefault(identity_key(email), set()).add(serial)
    if lake.has_current("landing", "customer_landing"):
        current = lake.current("landing", "customer_landing")
        with connect(lake.store.duckdb_setup()) as con:
            attach_parquet(con, {"c": [lake.uri(f) for f in current.files["data"]]})
            for email, serial in con.execute("SELECT email, serialNumber FROM c").fetchall():
                if identity_key(email) in keys:
                    found.setdefault(identity_key(email), set()).add(serial)
    return found


def _customer_records(landing_store):
    for path in landing_files(landing_store, "customer")[0]:
        for _, content, _ in _lines(landing_store, path):
            values, _ = parse_line("customer", content)
            if values is not None:
                yield values


def _lines(store, path: str):
    """(raw line with its terminator, content without terminator/BOM, had BOM) of a landing file."""
    with store.open(path) as stream:
        data = stream.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    for number, raw in enumerate(data.splitlines(keepends=True), 1):
        content = raw.rstrip(b"\n").rstrip(b"\r")
        bom = number == 1 and content.startswith(BOM)
        yield raw, content[len(BOM):] if bom else content, bom


def _rewrite_landing(landing_store, subjects: _Subjects, report: ForgetReport) -> dict[str, int]:
    """Rewrite every landing file that holds a line of theirs; returns {path: new size}."""
    sizes = {}
    for source in SOURCE_OF.values():
        for path in landing_files(landing_store, source)[0]:
            kept, removed, lost_bom = [], 0, False
            for raw, content, bom in _lines(landing_store, path):
                values, _ = parse_line(source, content) if content.strip() else (None, None)
                gone = subjects.owns(source, values) if values is not None else (
                    bool(content.strip()) and subjects.mentioned_in(content.decode("utf-8", "backslashreplace")))
                if gone:
                    removed += 1
                    lost_bom = lost_bom or bom
                else:
                    kept.append(BOM + raw if lost_bom and not kept else raw)  # the file keeps its BOM
            if removed:
                data = b"".join(kept)
                landing_store.write_atomic(path, gzip.compress(data, mtime=0) if path.endswith(".gz") else data)
                sizes[path] = landing_store.size(path)
                report.landing_lines_removed += removed
                report.landing_files_rewritten += 1
    return sizes


def _predicate(columns: list[str], subjects: _Subjects, ids: set[str]) -> str | None:
    """SQL that is true for a row of theirs, from the columns the table has."""
    quote = lambda values: "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + ")"  # noqa: E731
    subject, terms = subject_columns(columns), []
    terms += [f"lower(trim(BOTH ' ' FROM \"{c}\")) IN {quote(subjects.keys)}" for c in subject["identity"]]
    terms += [f"{c} IN {quote(subjects.keys)}" for c in subject["key"]]
    if ids:
        terms += [f"{c} IN {quote(ids)}" for c in subject["pseudonym"]]
    if subjects.serials:   # every reading of their devices goes, a shared device's too: privacy first
        terms += [f"\"{c}\" IN {quote(subjects.serials)}" for c in subject["serial"]]
    if "raw" in columns:
        terms += [f"contains(lower(raw), '{n.replace(chr(39), chr(39) * 2)}')" for n in subjects.needles]
    return " OR ".join(terms) or None


def _rewrite_snapshots(lake: Lake, subjects: _Subjects, landing_sizes: dict[str, int], report: ForgetReport) -> None:
    ids, current_key_id = set(), None
    if any(lake.has_current(t.zone, t.name) and "customer_id" in [c.name for c in t.columns] for t in TABLES):
        key = pseudonym_key(lake)
        ids, current_key_id = {pseudonym(key, k) for k in subjects.keys}, key_id(key)
    for spec in TABLES:
        if not lake.has_current(spec.zone, spec.name):
            continue
        current = lake.current(spec.zone, spec.name).snapshot
        for snap in lake.snapshots(spec.zone, spec.name):
            built_with = snap.extra.get("pseudonym_key_id")
            if built_with and built_with != current_key_id:
                # Pseudonyms under an older key cannot be matched: such a snapshot cannot be kept.
                if snap.snapshot == current:
                    raise RuntimeError(f"{snap.qualified_name} was built with another pseudonym key: "
                                       "re-run the pipeline, then forget again")
                lake.store.delete_tree(f"{spec.zone}/{spec.name}/snapshots/{snap.snapshot}")
                report.snapshots_dropped.append(f"{snap.qualified_name}@{snap.snapshot}")
                continue
            _rewrite_snapshot(lake, snap, subjects, ids, landing_sizes, snap.snapshot == current, report)


def _rewrite_snapshot(lake, snap: Snapshot, subjects, ids, landing_sizes, is_current, report) -> None:
    rows, changed = dict(snap.rows), False
    for part, files in snap.files.items():
        for rel in files:
            with connect(lake.store.duckdb_setup()) as con:
                attach_parquet(con, {"t": [lake.uri(rel)]})
                columns = [d[0] for d in con.execute("SELECT * FROM t LIMIT 0").description]
                predicate = _predicate(columns, subjects, ids)
                if predicate is None:
                    continue
                doomed = con.execute(f"SELECT count(*) FROM t WHERE {predicate}").fetchone()[0]
                if not doomed:
                    continue
                with tempfile.TemporaryDirectory(prefix="stedi-forget-") as tmp:
                    out = str(Path(tmp) / "part.parquet")
                    con.execute(f"COPY (SELECT * FROM t WHERE NOT ({predicate})) TO '{out}' (FORMAT parquet)")
                    lake.store.put_file(out, rel)           # replaces the file: the old bytes are gone
            rows[part] = rows.get(part, 0) - doomed
            report.rows_removed[snap.qualified_name] = report.rows_removed.get(snap.qualified_name, 0) + doomed
            changed = True
    extra = dict(snap.extra)
    if "landing_files" in extra and any(p in landing_sizes for p in extra["landing_files"]):
        extra["landing_files"] = {p: landing_sizes.get(p, s) for p, s in extra["landing_files"].items()}
        changed = True
    if changed:
        updated = Snapshot(**{**snap.__dict__, "rows": rows, "extra": extra})
        folder = f"{snap.zone}/{snap.table}/snapshots/{snap.snapshot}"
        lake.store.write_atomic(f"{folder}/_manifest.json", updated.to_json())
        if is_current:
            lake.store.write_atomic(f"{snap.zone}/{snap.table}/{POINTER}", updated.to_json())
