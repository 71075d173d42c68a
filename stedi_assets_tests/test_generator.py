"""Tests of stedi_assets.generator.

The landing-line validator and the two reference policies below are written here from ZONE_RULES.md,
independently of the generator (and of the project's own landing code), so that they check the
generator's bookkeeping instead of repeating it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from stedi_assets import generator
from stedi_assets.generator import DEFECTS, SOURCES, GeneratedLanding, generate_landing

UDACITY = Path(__file__).resolve().parents[2] / "shared" / "stedi-data"  # ../shared beside the repo
BOM = b"\xef\xbb\xbf"
INT64 = (-(2**63), 2**63 - 1)
LANDING_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
CLEAN_CUSTOMERS = 350  # enough for two step_trainer files
INT_FIELDS = {"customer": b"registrationDate", "accelerometer": b"timestamp", "step_trainer": b"sensorReadingTime"}


# ---------------------------------------------------------------- independent landing validator


class Invalid(Exception):
    """A line breaking a landing rule; the message is the reason."""


def _reject_constant(name: str) -> None:
    raise Invalid(f"{name} is not a number")


def _integer(v: object) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return INT64[0] <= v <= INT64[1]
    return isinstance(v, float) and math.isfinite(v) and v.is_integer() and INT64[0] <= v <= INT64[1]


def _number(v: object) -> bool:
    return not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)))


def _text(v: object) -> bool:
    return isinstance(v, str) and v.strip(" ") != ""


def _or_null(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


# source -> field -> (check, required). Absent optional fields read as None.
RULES: dict[str, dict[str, tuple[Callable[[object], bool], bool]]] = {
    "customer": {
        "email": (_text, True),
        "serialNumber": (_text, True),
        "registrationDate": (_integer, True),
        "lastUpdateDate": (_integer, True),
        **{
            k: (_or_null(_integer), False)
            for k in ("shareWithResearchAsOfDate", "shareWithPublicAsOfDate", "shareWithFriendsAsOfDate")
        },
        **{k: (_or_null(lambda v: isinstance(v, str)), False) for k in ("customerName", "phone", "birthDay")},
    },
    "accelerometer": {
        "user": (_text, True),
        "timestamp": (_integer, True),
        **{k: (_number, True) for k in ("x", "y", "z")},
    },
    "step_trainer": {
        "sensorReadingTime": (_integer, True),
        "serialNumber": (_text, True),
        "distanceFromObject": (_number, True),
    },
}


def validate(source: str, raw: bytes) -> dict | None:
    """The typed record of one physical line (CR already removed); None for a blank line; raises Invalid."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("not UTF-8") from None
    if text.strip() == "":
        return None
    try:
        rec = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise Invalid("not JSON") from None
    if not isinstance(rec, dict):
        raise Invalid("not an object")
    if source == "accelerometer" and "timestamp" not in rec and "timeStamp" in rec:
        rec["timestamp"] = rec["timeStamp"]  # legacy key, used only when timestamp is absent
    for name, (check, required) in RULES[source].items():
        if name not in rec and required:
            raise Invalid(f"missing {name}")
        if not check(rec.get(name)):
            raise Invalid(f"bad {name}: {rec.get(name)!r}")
    return {name: rec.get(name) for name in RULES[source]}


class Row(NamedTuple):
    path: str  # relative to the landing root
    line: int  # physical line number, from 1
    status: str  # "valid", "invalid" or "blank"
    reason: str
    rec: dict | None


def physical_lines(path: Path) -> list[bytes]:
    """Lines of a landing file after gunzip, without the BOM, newlines and a CR before the newline."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    lines = data.removeprefix(BOM).split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [ln.removesuffix(b"\r") for ln in lines]


class Tree(NamedTuple):
    """A landing tree as read by the independent validator."""

    root: Path
    rows: dict[str, list[Row]]

    @classmethod
    def read(cls, root: Path) -> Tree:
        rows: dict[str, list[Row]] = {}
        for source in SOURCES:
            rows[source] = []
            for path in cls.files_of(root, source):
                rel = path.relative_to(root).as_posix()
                for number, raw in enumerate(physical_lines(path), start=1):
                    try:
                        rec = validate(source, raw)
                        rows[source].append(Row(rel, number, "blank" if rec is None else "valid", "", rec))
                    except Invalid as e:
                        rows[source].append(Row(rel, number, "invalid", str(e), None))
        return cls(root, rows)

    @staticmethod
    def files_of(root: Path, source: str) -> list[Path]:
        """Landing files of a source at any depth, as ZONE_RULES names them."""
        return sorted(p for p in (root / source).rglob("*") if p.is_file() and p.name.endswith(LANDING_SUFFIXES))

    def records(self, source: str) -> list[dict]:
        return [r.rec for r in self.rows[source] if r.status == "valid"]

    def paths(self) -> list[Path]:
        return [p for source in SOURCES for p in self.files_of(self.root, source)]


def key(email: str) -> str:
    return email.strip(" ").lower()


# ---------------------------------------------------------------- reference policies (counts only)


def rubric_counts(tree: Tree) -> dict[str, int]:
    customers = tree.records("customer")
    ct = [c for c in customers if c["shareWithResearchAsOfDate"] is not None]
    emails = {c["email"] for c in ct}
    at = [a for a in tree.records("accelerometer") if a["user"] in emails]
    users = {a["user"] for a in at}
    cc = [c for c in ct if c["email"] in users]
    serials = {c["serialNumber"] for c in cc}
    st = [s for s in tree.records("step_trainer") if s["serialNumber"] in serials]
    at_per_time = Counter(a["timestamp"] for a in at)
    return {
        "customer_trusted": len(ct),
        "accelerometer_trusted": len(at),
        "customer_curated": len(cc),
        "step_trainer_trusted": len(st),
        "machine_learning_curated": sum(at_per_time[s["sensorReadingTime"]] for s in st),
    }


def frozen(rec: dict) -> tuple:
    return tuple(sorted((k, float(v) if isinstance(v, (int, float)) else v) for k, v in rec.items()))


def strict_winners(tree: Tree) -> dict[str, dict]:
    best: dict[str, tuple] = {}
    for row in tree.rows["customer"]:
        if row.status != "valid":
            continue
        c = row.rec
        rank = (c["lastUpdateDate"], c["shareWithResearchAsOfDate"] is None, row.path, row.line)
        k = key(c["email"])
        if k not in best or rank > best[k][0]:
            best[k] = (rank, c)
    return {k: c for k, (_, c) in best.items()}


def attribution(tree: Tree, winners: dict[str, dict]) -> Callable[[dict], str | None]:
    """Step reading -> identity key, per the strict policy (None: no candidate or ambiguous)."""
    by_serial: dict[str, list[str]] = defaultdict(list)
    for k, c in winners.items():
        by_serial[c["serialNumber"]].append(k)
    times: dict[str, set[int]] = defaultdict(set)
    for a in tree.records("accelerometer"):
        times[key(a["user"])].add(int(a["timestamp"]))

    def owner(s: dict) -> str | None:
        candidates = by_serial.get(s["serialNumber"], [])
        if len(candidates) == 1:
            return candidates[0]
        matching = [k for k in candidates if int(s["sensorReadingTime"]) in times[k]]
        return matching[0] if len(matching) == 1 else None

    return owner


def strict_counts(tree: Tree) -> dict[str, int]:
    winners = strict_winners(tree)
    consent = {
        k: c["shareWithResearchAsOfDate"] for k, c in winners.items() if c["shareWithResearchAsOfDate"] is not None
    }
    at = {
        frozen(a): a
        for a in tree.records("accelerometer")
        if key(a["user"]) in consent and a["timestamp"] >= consent[key(a["user"])]
    }.values()
    cc = {key(a["user"]) for a in at}
    owner = attribution(tree, winners)
    st = [
        s
        for s in {frozen(s): s for s in tree.records("step_trainer")}.values()
        if owner(s) in cc and s["sensorReadingTime"] >= consent[owner(s)]
    ]
    at_per_time = Counter((key(a["user"]), a["timestamp"]) for a in at)
    return {
        "customer_trusted": len(consent),
        "accelerometer_trusted": len(at),
        "customer_curated": len(cc),
        "step_trainer_trusted": len(st),
        "machine_learning_curated": sum(at_per_time[(owner(s), s["sensorReadingTime"])] for s in st),
    }


# ---------------------------------------------------------------- fixtures (module-scoped: generated once)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[GeneratedLanding, Tree]:
    landing = generate_landing(tmp_path_factory.mktemp("clean"), customers=CLEAN_CUSTOMERS, seed=7)
    return landing, Tree.read(landing.root)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[GeneratedLanding, Tree]:
    landing = generate_landing(tmp_path_factory.mktemp("full"), customers=60, seed=3, defects=DEFECTS)
    return landing, Tree.read(landing.root)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, tuple[GeneratedLanding, Tree]]:
    """One tree per defect, holding only that defect."""
    out = {}
    for defect in DEFECTS:
        landing = generate_landing(tmp_path_factory.mktemp(defect), customers=60, seed=11, defects=[defect])
        out[defect] = landing, Tree.read(landing.root)
    return out


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- arguments, determinism, layout


def test_bad_arguments_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown defect.*'typo'"):
        generate_landing(tmp_path / "a", defects=["revocations", "typo"])
    with pytest.raises(ValueError, match="customers"):
        generate_landing(tmp_path / "b", customers=0)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    runs = [
        generate_landing(tmp_path / name, customers=40, seed=seed, defects=DEFECTS)
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    ]
    a, b, c = (tree_bytes(r.root) for r in runs)
    assert a == b
    assert runs[0].lines == runs[1].lines and runs[0].invalid_lines == runs[1].invalid_lines
    assert a.keys() != c.keys() or a != c


def test_layout_and_file_names(clean):
    landing, _ = clean
    on_disk = {p for p in landing.root.rglob("*") if p.is_file()}
    assert on_disk == {p for files in landing.files.values() for p in files}  # no leftovers
    for source, files in landing.files.items():
        for path in files:
            assert path.parent == landing.root / source / "landing"
            stem = path.name.removeprefix(f"{source}-").removesuffix(".json")
            assert len(stem) == 13 and stem.isdigit(), path.name
            assert path.read_bytes().endswith(b"\n")
    assert len(landing.files["customer"]) == 1
    for source in ("accelerometer", "step_trainer"):  # split like Udacity: full files, then the rest
        sizes = [len(physical_lines(p)) for p in landing.files[source]]
        assert len(sizes) >= 2 and set(sizes[:-1]) == {10_000} and 0 < sizes[-1] <= 10_000, sizes


def test_separators_like_udacity(clean):
    landing, _ = clean
    customer_line = physical_lines(landing.files["customer"][0])[0]
    assert customer_line.startswith(b'{"customerName": "')  # the Udacity customer file is spaced
    for source in ("accelerometer", "step_trainer"):
        line = physical_lines(landing.files[source][0])[0]
        assert b", " not in line and b": " not in line  # the others are compact


def _udacity_first_lines(source: str) -> list[dict]:
    files = sorted((UDACITY / source / "landing").glob("*.json"))
    if not files:
        pytest.skip("Udacity data not available")
    return [json.loads(f.open().readline()) for f in files]


@pytest.mark.parametrize("source", SOURCES)
def test_fields_and_json_types_match_udacity(clean, source):
    expected = _udacity_first_lines(source)
    types = {k: type(v) for rec in expected for k, v in rec.items()}
    key_sets = {frozenset(rec) for rec in expected}
    landing, _ = clean
    for path in landing.files[source]:
        for raw in physical_lines(path):
            rec = json.loads(raw)
            if source == "customer":  # optional consents are absent keys, as in Udacity
                assert set(rec) <= set(types) and set(types) - set(rec) <= {
                    "shareWithResearchAsOfDate",
                    "shareWithPublicAsOfDate",
                    "shareWithFriendsAsOfDate",
                }
            else:
                assert frozenset(rec) in key_sets
            assert {k: type(v) for k, v in rec.items()} == {k: types[k] for k in rec}


def test_clean_customers(clean):
    _, tree = clean
    customers = tree.records("customer")
    n = CLEAN_CUSTOMERS
    assert len(customers) == len({c["email"] for c in customers}) == len({c["serialNumber"] for c in customers}) == n
    consenting = sum(c["shareWithResearchAsOfDate"] is not None for c in customers)
    assert 0.5 <= consenting / n <= 0.6
    c = customers[0]
    assert c["phone"] == "8015551212" and c["birthDay"].endswith("-01-01") and c["email"].endswith("@test.com")
    assert all(1_654_000_000_000 < c["registrationDate"] < 1_657_000_000_000 for c in customers)  # ~2022-06


def test_readings(clean):
    _, tree = clean
    consent = {c["email"]: c["shareWithResearchAsOfDate"] for c in tree.records("customer")}
    readings = tree.records("accelerometer")
    per_user = Counter(a["user"] for a in readings)
    assert 0.6 <= len(per_user) / len(consent) <= 0.8
    counts = sorted(per_user.values())
    assert counts[0] >= 40 and counts[-1] <= 140 and 60 <= counts[len(counts) // 2] <= 110
    before = [a for a in readings if consent[a["user"]] is not None and a["timestamp"] < consent[a["user"]]]
    after = [a for a in readings if consent[a["user"]] is not None and a["timestamp"] >= consent[a["user"]]]
    assert before and after
    xyz_per_time = defaultdict(set)
    for a in readings:
        xyz_per_time[(a["user"], a["timestamp"])].add((a["x"], a["y"], a["z"]))
    assert any(len(v) > 1 for v in xyz_per_time.values())  # repeated timestamps, different x/y/z
    assert {v for a in readings for v in (a["x"], a["y"], a["z"])} == {-1.0, 0.0, 1.0}


def test_step_times_coincide_with_owner_accelerometer_times(clean):
    _, tree = clean
    owner = {c["serialNumber"]: c["email"] for c in tree.records("customer")}
    times = defaultdict(set)
    for a in tree.records("accelerometer"):
        times[a["user"]].add(a["timestamp"])
    steps = tree.records("step_trainer")
    with_data = [s for s in steps if times[owner[s["serialNumber"]]]]
    matched = [s for s in with_data if s["sensorReadingTime"] in times[owner[s["serialNumber"]]]]
    assert 0.8 <= len(matched) / len(with_data) < 1  # most coincide, a few do not
    assert any(not times[owner[s["serialNumber"]]] for s in steps)  # devices of owners without readings
    share = len(matched) / sum(len(t) for t in times.values())
    assert 0.7 <= share < 1  # most of an owner's times have a step reading


# ---------------------------------------------------------------- defects: present when asked, absent otherwise


def _customer_rows_by_key(tree: Tree) -> dict[str, list[Row]]:
    by_key = defaultdict(list)
    for row in tree.rows["customer"]:
        if row.status == "valid":
            by_key[key(row.rec["email"])].append(row)
    return by_key


def _has_duplicate_serials(tree: Tree) -> bool:
    owners = defaultdict(set)
    for c in tree.records("customer"):
        owners[c["serialNumber"]].add(key(c["email"]))
    return any(len(keys) > 1 for keys in owners.values())


def _has_revocations(tree: Tree) -> bool:
    def consents(row: Row) -> bool:
        return row.rec["shareWithResearchAsOfDate"] is not None

    def revoked(a: Row, b: Row) -> bool:
        return consents(a) and not consents(b) and b.rec["lastUpdateDate"] > a.rec["lastUpdateDate"] and b.path > a.path

    def tie(a: Row, b: Row) -> bool:
        return consents(a) != consents(b) and b.rec["lastUpdateDate"] == a.rec["lastUpdateDate"]

    pairs = [(a, b) for rows in _customer_rows_by_key(tree).values() for a in rows for b in rows]
    return any(revoked(a, b) for a, b in pairs) and any(tie(a, b) for a, b in pairs)


def _has_malformed_lines(tree: Tree) -> bool:  # (encodings adds one invalid line too: a non-UTF-8 one)
    return any(
        r.status == "blank" or (r.status == "invalid" and r.reason != "not UTF-8")
        for rows in tree.rows.values()
        for r in rows
    )


def _has_redelivered_files(tree: Tree) -> bool:
    digests = Counter(hashlib.sha256(p.read_bytes()).digest() for p in tree.paths())
    return max(digests.values()) > 1


def _has_email_case(tree: Tree) -> bool:
    emails = {c["email"] for c in tree.records("customer")}
    users = {a["user"] for a in tree.records("accelerometer")}
    spelled_differently = {u for u in users - emails if key(u) in {key(e) for e in emails}}
    return bool(spelled_differently) or len(emails) > len({key(e) for e in emails})


def _has_encodings(tree: Tree) -> bool:
    def odd(path: Path) -> bool:
        data = path.read_bytes()
        return path.suffix != ".json" or data.startswith(BOM) or b"\r\n" in data

    return any(odd(p) for p in tree.paths()) or any(
        r.reason == "not UTF-8" for rows in tree.rows.values() for r in rows
    )


DETECTORS: dict[str, Callable[[Tree], bool]] = {
    "duplicate_serials": _has_duplicate_serials,
    "revocations": _has_revocations,
    "malformed_lines": _has_malformed_lines,
    "redelivered_files": _has_redelivered_files,
    "email_case": _has_email_case,
    "encodings": _has_encodings,
}
assert set(DETECTORS) == set(DEFECTS)


@pytest.mark.parametrize("tree_name", [*DEFECTS, "(none)", "(all)"])
def test_each_defect_present_only_when_asked(tree_name, single, clean, full):
    tree = {**{d: t for d, (_, t) in single.items()}, "(none)": clean[1], "(all)": full[1]}[tree_name]
    present = {name for name, detect in DETECTORS.items() if detect(tree)}
    assert present == {"(none)": set(), "(all)": set(DEFECTS)}.get(tree_name, {tree_name})


def test_clean_tree_has_no_invalid_lines_and_no_duplicates(clean):
    landing, tree = clean
    assert landing.invalid_lines == {s: 0 for s in SOURCES}
    assert all(r.status == "valid" for rows in tree.rows.values() for r in rows)
    for source in ("accelerometer", "step_trainer"):
        recs = tree.records(source)
        assert len({frozen(r) for r in recs}) == len(recs)


def test_duplicate_serials_attribution(single):
    _, tree = single["duplicate_serials"]
    winners = strict_winners(tree)
    owners_of = defaultdict(list)
    for k, c in winners.items():
        owners_of[c["serialNumber"]].append(k)
    shared = {s: keys for s, keys in owners_of.items() if len(keys) > 1}
    assert shared and all(len(keys) == 2 for keys in shared.values())
    times = defaultdict(set)
    for a in tree.records("accelerometer"):
        times[key(a["user"])].add(a["timestamp"])
    steps = [s for s in tree.records("step_trainer") if s["serialNumber"] in shared]
    owner = attribution(tree, winners)
    assert {owner(s) for s in steps} - {None} == {k for keys in shared.values() for k in keys}  # resolvable
    matches = Counter(sum(s["sensorReadingTime"] in times[k] for k in shared[s["serialNumber"]]) for s in steps)
    assert matches[0] and matches[1] and matches[2]  # ambiguous: neither owner, and both owners


def test_revocations_in_a_later_file_and_a_tie(single):
    _, tree = single["revocations"]
    files = sorted({r.path for r in tree.rows["customer"]})
    assert len(files) == 2
    later = [r.rec for r in tree.rows["customer"] if r.path == files[1]]
    assert sum(c["shareWithResearchAsOfDate"] is None for c in later) >= 2
    assert sum(c["shareWithResearchAsOfDate"] is not None for c in later) == 1  # the tie's consenting twin
    winners = strict_winners(tree)
    revoked = {key(c["email"]) for c in later}
    assert all(winners[k]["shareWithResearchAsOfDate"] is None for k in revoked)  # privacy first, also on the tie


def test_malformed_lines_each_kind_in_each_source(single):
    _, tree = single["malformed_lines"]
    for source, rows in tree.rows.items():
        reasons = " | ".join(r.reason for r in rows if r.status == "invalid")
        for expected in (
            "not JSON",
            "not an object",
            "missing ",
            ": '1",
            ": True",
            ": 1.5",
            "9223372036854775808",
            "1e+19",
            ": ''",
            ": '   '",
            ": 42",
            ": None",
        ):
            assert expected in reasons, (source, expected, reasons)
        assert sum(r.status == "blank" for r in rows) >= 2
        raw = b"\n".join(
            line for p in tree.paths() if p.is_relative_to(tree.root / source) for line in physical_lines(p)
        )
        for text in (b"NaN", b"Infinity", b"true", b"[{"):  # rejected by the validator, written as such
            assert text in raw, (source, text)
        # whole numbers spelled as floats or with an exponent: valid integers, so on valid lines
        valid = {(r.path, r.line) for r in rows if r.status == "valid"}
        valid_raw = b"\n".join(
            line
            for p in Tree.files_of(tree.root, source)
            for n, line in enumerate(physical_lines(p), 1)
            if (p.relative_to(tree.root).as_posix(), n) in valid
        )
        field = INT_FIELDS[source]
        for spelling in (rb'": ?\d{13}\.0[,}]', rb'": ?\d\.\d{12}e12[,}]'):  # 1655564444058.0, 1.655564444058e12
            assert re.search(b'"' + field + spelling, valid_raw), (source, spelling)
        assert re.search(rb"\de0[,}]", valid_raw)  # like 1e3


def test_redelivered_files_are_byte_identical_copies(single):
    landing, _ = single["redelivered_files"]
    for source in ("accelerometer", "step_trainer"):
        *_, copy = landing.files[source]
        original = landing.files[source][0]
        assert copy != original and copy.read_bytes() == original.read_bytes()
    assert len(landing.files["customer"]) == 1


def test_email_case(single):
    _, tree = single["email_case"]
    emails = {c["email"] for c in tree.records("customer")}
    odd = [a["user"] for a in tree.records("accelerometer") if a["user"] not in emails]
    assert any(u != u.strip(" ") for u in odd) and any(u == u.strip(" ") for u in odd)  # spaces and case
    assert {key(u) for u in odd} <= {key(e) for e in emails}
    customers_by_key = _customer_rows_by_key(tree)
    respelled = [rows for rows in customers_by_key.values() if len(rows) > 1]
    assert len(respelled) == 1
    a, b = (r.rec for r in respelled[0])
    assert a["email"] != b["email"] and a["lastUpdateDate"] != b["lastUpdateDate"]
    # a user whose readings never match exactly, so the rubric's exact join loses this customer
    exact_users = {a["user"] for a in tree.records("accelerometer")}
    assert any(key(u) in {key(e) for e in emails - exact_users} for u in odd)


def test_encodings(single):
    landing, tree = single["encodings"]
    files = [p.relative_to(landing.root).as_posix() for source in SOURCES for p in landing.files[source]]
    assert any(f.startswith("accelerometer/landing/2023/08/") and f.endswith(".json.gz") for f in files)
    assert any(f.endswith(".jsonl") for f in files)
    data = {f: (landing.root / f).read_bytes() for f in files}
    assert any(d.startswith(BOM) for d in data.values())
    assert any(b"\r\n" in d for d in data.values())
    for source in SOURCES:
        assert [r.reason for r in tree.rows[source] if r.status == "invalid"] == ["not UTF-8"]
    raw = [
        json.loads(line)
        for p in Tree.files_of(tree.root, "accelerometer")
        for line in physical_lines(p)
        if b'"timeStamp"' in line
    ]
    assert len(raw) == 2
    legacy, both = sorted(raw, key=len)
    assert "timestamp" not in legacy and both["timestamp"] != both["timeStamp"]  # timestamp wins


# ---------------------------------------------------------------- line counts and policy differences


@pytest.mark.parametrize("seed", [0, 1])
def test_reported_counts_match_an_independent_validator(tmp_path, seed):
    landing = generate_landing(tmp_path, customers=55, seed=seed, defects=DEFECTS)
    tree = Tree.read(landing.root)
    assert {p for files in landing.files.values() for p in files} == set(tree.paths())
    assert landing.lines == {s: sum(r.status != "blank" for r in tree.rows[s]) for s in SOURCES}
    assert landing.invalid_lines == {s: sum(r.status == "invalid" for r in tree.rows[s]) for s in SOURCES}


def test_every_rule_differs_between_policies_with_all_defects(full):
    rubric, strict = rubric_counts(full[1]), strict_counts(full[1])
    for table in rubric:
        assert rubric[table] and strict[table] and rubric[table] != strict[table], (table, rubric, strict)


def test_consent_dates_alone_make_policies_differ(clean):
    rubric, strict = rubric_counts(clean[1]), strict_counts(clean[1])
    assert rubric["customer_trusted"] == strict["customer_trusted"]  # one record per customer, nothing to resolve
    for table in ("accelerometer_trusted", "customer_curated", "step_trainer_trusted", "machine_learning_curated"):
        assert 0 < strict[table] < rubric[table], (table, rubric, strict)


def test_tiny_trees_still_work(tmp_path):
    for n in (1, 2, 7):
        landing = generate_landing(tmp_path / str(n), customers=n, seed=n, defects=DEFECTS)
        tree = Tree.read(landing.root)
        assert len({key(c["email"]) for c in tree.records("customer")}) == n
        assert landing.invalid_lines == {s: sum(r.status == "invalid" for r in tree.rows[s]) for s in SOURCES}


def test_spelling_defects_keep_the_records(tmp_path, monkeypatch):
    """malformed_lines and encodings only add invalid lines and re-spell values: the typed records stay the same.

    Small files exercise the chunking and the carving of the encodings files off the stream.
    """
    monkeypatch.setattr(generator, "LINES_PER_FILE", 700)
    base = Tree.read(generate_landing(tmp_path / "base", customers=60, seed=2).root)
    odd = Tree.read(
        generate_landing(tmp_path / "odd", customers=60, seed=2, defects=["malformed_lines", "encodings"]).root
    )
    assert len(Tree.files_of(odd.root, "accelerometer")) > 5
    for source in SOURCES:
        assert Counter(map(frozen, base.records(source))) == Counter(map(frozen, odd.records(source))), source
