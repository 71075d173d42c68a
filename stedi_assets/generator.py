"""Deterministic generator of a STEDI-shaped landing tree, for tests and benchmarks.

Why: the real Udacity STEDI data may not be copied into the project (its licence forbids it), and it
holds none of the defects the strict policy of ZONE_RULES.md is designed for. This module writes a
synthetic tree with the same layout, field names and JSON types, sized at will, whose ratios make every
rubric and strict rule produce different non-empty results, and with named defects injected on demand.

Layout (as in the Udacity starter data)::

    OUT/customer/landing/customer-<epochms>.json
    OUT/accelerometer/landing/accelerometer-<epochms>.json      (~10,000 lines per file)
    OUT/step_trainer/landing/step_trainer-<epochms>.json        (~10,000 lines per file)

Determinism: every random draw comes from ``random.Random`` instances seeded from ``seed`` (one per
purpose, so that switching a defect on does not perturb the base data or the other defects), gzip
headers carry no mtime, and file names come from the seeded RNG, never from the clock.

Speed: accelerometer and step lines are formatted with f-strings from precomputed fragments and
streamed to disk in 10,000-line chunks: 100k customers (~9.6M lines, ~1 GB) take about 10 s, in bounded memory.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import permutations, product
from pathlib import Path

DEFECTS = ("duplicate_serials", "revocations", "malformed_lines", "redelivered_files", "email_case", "encodings")
SOURCES = ("customer", "accelerometer", "step_trainer")

LINES_PER_FILE = 10_000
BASE_TIME_MS = 1_655_500_000_000  # 2022-06-17, the Udacity data's era
TIME_SPAN_MS = 7 * 24 * 3600 * 1000  # registrations spread over a week
FILE_STAMP_MS = 1_691_348_000_000  # 2023-08-06, the era of the Udacity file names
STEP_SHARE = 0.85  # share of an owner's accelerometer times that also get a step reading

# Customer kinds and their weights (per 100). They are assigned by quota, not by coin toss, so that
# every kind exists on any tree of 6+ customers and each rule of both policies has something to bite:
# consent 55%, readings 70% (like Udacity's 482/956 and 956 users); "before"/"straddle" windows start
# before the consent date (strict drops those readings; "before" customers drop out of strict curated).
KIND_WEIGHTS = {"after": 20, "straddle": 20, "before": 4, "consent_only": 11, "reader": 26, "idle": 19}
CONSENTING = frozenset({"after", "straddle", "before", "consent_only"})
READERS = frozenset({"after", "straddle", "before", "reader"})

FIRST_NAMES = (
    "Santosh",
    "Ben",
    "Frank",
    "David",
    "Edward",
    "Jane",
    "Sarah",
    "Lyn",
    "Chris",
    "Spencer",
    "Jacob",
    "Liz",
    "Steph",
    "John",
    "Kate",
    "Alyssa",
    "Bobby",
    "Trevor",
    "Raymond",
    "Anna",
)
LAST_NAMES = (
    "Clayton",
    "Khatib",
    "Hansen",
    "Jones",
    "Lincoln",
    "Mitra",
    "Davis",
    "Ahmed",
    "Phillips",
    "Miller",
    "Wu",
    "Hanson",
    "Stafford",
    "Antonio",
    "Gonzalez",
    "Ahmad",
    "Huang",
    "Fibonnaci",
)
AXIS_VALUES = (-1.0, 0.0, 1.0)
# All 27 "x","y","z" fragments, formatted exactly as json.dumps(..., separators=(",", ":")) would.
XYZ_FRAGMENTS = tuple(f'"x":{x},"y":{y},"z":{z}' for x, y, z in product(AXIS_VALUES, repeat=3))
REPEATS = (1, 1, 2, 3)  # readings per accelerometer timestamp: some repeated with different x/y/z
# Every ordered choice of 1..3 distinct fragments: one rng.choice() instead of a (slow) rng.sample() per time.
XYZ_GROUPS = {k: tuple(permutations(XYZ_FRAGMENTS, k)) for k in set(REPEATS)}
# Identity-preserving spellings of an e-mail: lower(trim()) maps them all back (trim = U+0020 only).
EMAIL_VARIANTS: tuple[Callable[[str], str], ...] = (
    str.upper,
    str.lower,
    str.swapcase,
    lambda e: " " + e,
    lambda e: e + "  ",
    lambda e: " " + e.upper() + " ",
)


@dataclass(frozen=True)
class GeneratedLanding:
    """What generate_landing wrote: line counts (non-blank, per source) and the files in delivery order."""

    root: Path
    lines: dict[str, int]
    invalid_lines: dict[str, int]
    files: dict[str, list[Path]]


@dataclass(frozen=True)
class FileFormat:
    """How one landing file is encoded on disk."""

    suffix: str = ".json"
    subdir: str = ""
    bom: bool = False
    crlf: bool = False
    gzip: bool = False


@dataclass(frozen=True)
class SourceSpec:
    """Per-source differences, so one code path serves all three sources."""

    separators: tuple[str, str]  # Udacity: spaced in the customer file, compact in the others
    id_field: str  # a string that must be non-empty after trim
    int_field: str  # a required integer
    num_field: str  # a required number (customer has none that is not an integer)
    example: Mapping[str, object]  # base for injected lines when a file holds no record to copy
    extra_invalid: tuple[Mapping[str, str | None], ...]  # source-specific invalid field overrides
    encoded_files: tuple[FileFormat, ...]  # extra files written by the "encodings" defect


SPECS: dict[str, SourceSpec] = {
    "customer": SourceSpec(
        separators=(", ", ": "),
        id_field="email",
        int_field="registrationDate",
        num_field="lastUpdateDate",
        example={
            "customerName": "Ada Example",
            "email": "Ada.Example0@test.com",
            "phone": "8015551212",
            "birthDay": "1990-01-01",
            "serialNumber": "00000000-0000-4000-8000-000000000000",
            "registrationDate": BASE_TIME_MS,
            "lastUpdateDate": BASE_TIME_MS,
        },
        extra_invalid=(
            {"customerName": "7"},
            {"shareWithResearchAsOfDate": '"1655564376361"'},
            {"serialNumber": None},
            {"serialNumber": '" "'},
        ),
        encoded_files=(FileFormat(bom=True),),
    ),
    "accelerometer": SourceSpec(
        separators=(",", ":"),
        id_field="user",
        int_field="timestamp",
        num_field="x",
        example={"user": "Ada.Example0@test.com", "timestamp": BASE_TIME_MS, "x": 0.0, "y": 1.0, "z": -1.0},
        extra_invalid=({"timestamp": None, "timeStamp": '"1655564444058"'}, {"y": '"0.0"'}, {"z": None}),
        encoded_files=(FileFormat(suffix=".json.gz", subdir="2023/08", gzip=True), FileFormat(bom=True, crlf=True)),
    ),
    "step_trainer": SourceSpec(
        separators=(",", ":"),
        id_field="serialNumber",
        int_field="sensorReadingTime",
        num_field="distanceFromObject",
        example={
            "sensorReadingTime": BASE_TIME_MS,
            "serialNumber": "00000000-0000-4000-8000-000000000000",
            "distanceFromObject": 250,
        },
        extra_invalid=({"distanceFromObject": '"218"'}, {"serialNumber": "null"}),
        encoded_files=(
            FileFormat(suffix=".jsonl"),
            FileFormat(crlf=True),
            FileFormat(suffix=".jsonl.gz", subdir="late", gzip=True),
        ),
    ),
}

Overrides = Mapping[str, str | None]  # field -> raw JSON text; None drops the field; new keys are appended
Line = str | bytes  # bytes only for deliberately non-UTF-8 lines


def _exponent_form(value: int) -> str:
    """1655564444058 -> '1.655564444058e12': the same whole number, written with an exponent."""
    digits = str(value)
    return f"{digits[0]}.{digits[1:] or '0'}e{len(digits) - 1}"


# Invalid variants of a real record: each is one way a line breaks the landing rules.
# A line is built from a copied record, so only the named defect makes it invalid.
INVALID_KINDS: dict[str, Callable[[dict, SourceSpec], str | Overrides]] = {
    "not_json": lambda rec, s: _render(rec, s)[:-1] + ",",
    "json_array": lambda rec, s: "[" + _render(rec, s) + "]",
    "json_scalar": lambda rec, s: "null",
    "missing_field": lambda rec, s: {s.int_field: None},
    "null_required": lambda rec, s: {s.int_field: "null"},
    "string_number": lambda rec, s: {s.int_field: json.dumps(str(rec[s.int_field]))},
    "bool_number": lambda rec, s: {s.num_field: "true"},
    "fraction": lambda rec, s: {s.int_field: "1.5"},
    "nan": lambda rec, s: {s.num_field: "NaN"},
    "infinity": lambda rec, s: {s.num_field: "-Infinity"},
    "empty_id": lambda rec, s: {s.id_field: '""'},
    "space_id": lambda rec, s: {s.id_field: '"   "'},
    "id_not_string": lambda rec, s: {s.id_field: "42"},
    "int_over_64_bits": lambda rec, s: {s.int_field: "9223372036854775808"},  # 2**63
    "float_over_64_bits": lambda rec, s: {s.int_field: "1e19"},  # whole, but too big
}
# Valid but unusual spellings of a real record: the typed row is unchanged (same values).
VALID_ODDITIES: tuple[Callable[[dict, SourceSpec], Overrides], ...] = (
    lambda rec, s: {s.int_field: f"{rec[s.int_field]}.0"},
    lambda rec, s: {s.int_field: _exponent_form(rec[s.int_field])},
    lambda rec, s: {s.num_field: f"{rec[s.num_field]}e0"},
    lambda rec, s: {"comment": '"unknown keys are ignored"'},
    # customer only (no-op elsewhere): an absent optional date written as an explicit null
    lambda rec, s: {
        k: "null"
        for k in ("shareWithPublicAsOfDate", "shareWithFriendsAsOfDate")
        if s.id_field == "email" and k not in rec
    },
)
BLANK_LINES = ("", "   ", "\t", " \t ")


def _render(rec: Mapping[str, object], spec: SourceSpec, overrides: Overrides | None = None) -> str:
    """Serialise like json.dumps(rec, separators=spec.separators), with raw-text overrides per field."""
    overrides = overrides or {}
    item_sep, key_sep = spec.separators
    raws = {k: json.dumps(v) for k, v in rec.items()} | dict(overrides)
    return "{" + item_sep.join(f"{json.dumps(k)}{key_sep}{raw}" for k, raw in raws.items() if raw is not None) + "}"


def _uuid_shaped(rng: random.Random) -> str:
    """A version-4-looking UUID from the seeded RNG (uuid4() would use the OS entropy)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


@dataclass(slots=True)
class _Customer:
    """One planned customer: its record fields plus the parameters of its device's readings."""

    number: int
    kind: str
    name: str
    email: str
    serial: str
    birth_year: int
    registration: int
    last_update: int
    research: int | None
    public: int | None
    friends: int | None
    start: int  # time of the first accelerometer (or step) reading
    interval: int
    times: int  # number of distinct reading times
    has_steps: bool
    user_variants: tuple[str, ...] = ()  # email_case: other spellings used as the accelerometer user
    variant_share: float = 0.0
    shared_time: int | None = None  # duplicate_serials: a time where both owners of a serial have readings
    shared_distance: int = 0

    def record(self) -> dict[str, object]:
        """The customer record, in Udacity's key order; absent consents are absent keys, as in Udacity."""
        rec: dict[str, object] = {
            "customerName": self.name,
            "email": self.email,
            "phone": "8015551212",
            "birthDay": f"{self.birth_year}-01-01",
            "serialNumber": self.serial,
            "registrationDate": self.registration,
            "lastUpdateDate": self.last_update,
        }
        for key, value in (
            ("shareWithResearchAsOfDate", self.research),
            ("shareWithPublicAsOfDate", self.public),
            ("shareWithFriendsAsOfDate", self.friends),
        ):
            if value is not None:
                rec[key] = value
        return rec


def _kind_quota(customers: int) -> list[str]:
    """Kinds by largest remainder, at least one of each when there is room."""
    total = sum(KIND_WEIGHTS.values())
    exact = {k: customers * w / total for k, w in KIND_WEIGHTS.items()}
    counts = {k: int(v) for k, v in exact.items()}
    if customers >= len(KIND_WEIGHTS):
        counts = {k: max(1, c) for k, c in counts.items()}
    by_remainder = sorted(KIND_WEIGHTS, key=lambda k: exact[k] - int(exact[k]), reverse=True)
    while sum(counts.values()) < customers:
        counts[by_remainder.pop(0)] += 1
    while sum(counts.values()) > customers:  # only when the minimum of one overshot
        counts[max(counts, key=lambda k: counts[k])] -= 1
    return [k for k in KIND_WEIGHTS for _ in range(counts[k])]


def _reading_start(kind: str, consent: int, registration: int, times: int, interval: int, rng: random.Random) -> int:
    """Where the reading window starts relative to the consent date, per kind."""
    if kind == "after":
        return consent + rng.randrange(1, 60_000)
    if kind == "straddle":  # the first `before` times precede the consent date
        before = rng.randint(max(1, times // 4), max(1, 3 * times // 4))
        return consent - before * interval + rng.randrange(1, interval)
    if kind == "before":  # every reading precedes the consent date
        return consent - (times + rng.randint(1, 20)) * interval
    return registration + rng.randrange(0, 120_000)


def _plan_customers(customers: int, rng: random.Random) -> list[_Customer]:
    kinds = _kind_quota(customers)
    rng.shuffle(kinds)
    serials: set[str] = set()
    seen_kinds: dict[str, int] = {}
    plan = []
    for number, kind in enumerate(kinds, start=1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        serial = _uuid_shaped(rng)
        while serial in serials:  # uniqueness is part of the clean data's contract
            serial = _uuid_shaped(rng)
        serials.add(serial)
        registration = BASE_TIME_MS + rng.randrange(TIME_SPAN_MS)
        last_update = registration if rng.random() < 0.8 else registration + rng.randrange(1, 3 * 86_400_000)
        consent = last_update if kind in CONSENTING else None
        public = last_update if rng.random() < 0.5 else None
        friends = last_update if rng.random() < 0.5 else None
        times, interval = rng.randint(35, 62), rng.randint(2000, 5000)
        start = _reading_start(kind, last_update, registration, times, interval, rng)
        seen_kinds[kind] = seen_kinds.get(kind, 0) + 1
        # Readers' devices always report; half of the others too (steps without accelerometer data).
        has_steps = kind in READERS or seen_kinds[kind] % 2 == 1
        plan.append(
            _Customer(
                number,
                kind,
                f"{first} {last}",
                f"{first}.{last}{number}@test.com",
                serial,
                rng.randint(1925, 2005),
                registration,
                last_update,
                consent,
                public,
                friends,
                start,
                interval,
                times,
                has_steps,
            )
        )
    return plan


@dataclass
class _Defected:
    """Customer-level defects applied to the plan: extra customer records and where they go."""

    before_line: dict[int, list[dict]] = field(default_factory=dict)  # customer number -> records written before it
    update_file: list[dict] = field(default_factory=list)  # records for a separate, later customer file


def _defect_slices(plan: list[_Customer], rng: random.Random) -> dict[str, list[_Customer]]:
    """Disjoint pools of consenting readers per customer-level defect, independent of which are enabled."""
    pool = [c for c in plan if c.kind in ("after", "straddle")]
    rng.shuffle(pool)
    n = len(plan)
    sizes = {"duplicate_serials": 2 * max(1, n // 50), "email_case": max(2, n // 40), "revocations": max(3, n // 40)}
    slices, at = {}, 0
    for name, size in sizes.items():
        slices[name], at = pool[at : at + size], at + size
    return slices


def _duplicate_serials(pool: list[_Customer], rng: random.Random, out: _Defected) -> None:
    """Pairs share a serial; the second owner also reads at one of the first owner's times (ambiguous)."""
    for a, b in zip(pool[0::2], pool[1::2], strict=False):  # an odd one out stays unpaired
        b.serial = a.serial
        b.shared_time = a.start + a.interval * rng.randrange(a.times // 2, a.times)
        b.shared_distance = _distance(rng)


def _email_case(pool: list[_Customer], rng: random.Random, out: _Defected) -> None:
    """Accelerometer users spelled differently; one customer record re-delivered under another spelling."""
    for position, c in enumerate(pool):
        c.user_variants = tuple(v(c.email) for v in rng.sample(EMAIL_VARIANTS, 2))
        c.variant_share = 1.0 if position == 0 else 0.5  # the first has no exact match at all (rubric misses it)
    if pool:
        c = pool[-1]
        later = c.last_update + rng.randint(1000, 86_400_000)
        rec = c.record() | {"email": " " + c.email.upper(), "lastUpdateDate": later}
        # written BEFORE the older record, so "last line wins" would pick the wrong one
        out.before_line.setdefault(c.number, []).append(rec)


def _revocations(pool: list[_Customer], rng: random.Random, out: _Defected) -> None:
    """Later records without research consent; plus one tie on lastUpdateDate (privacy first must win)."""
    if not pool:
        return
    *revoked, tie = pool
    for c in revoked:
        rec = c.record() | {"lastUpdateDate": c.last_update + rng.randint(60_000, 86_400_000)}
        del rec["shareWithResearchAsOfDate"]
        out.update_file.append(rec)
    # The consenting twin is in the LATER file, so "later file wins" would wrongly keep consent.
    out.update_file.append(tie.record())
    tie.research = None


CUSTOMER_DEFECTS: dict[str, Callable[[list[_Customer], random.Random, _Defected], None]] = {
    "duplicate_serials": _duplicate_serials,
    "email_case": _email_case,
    "revocations": _revocations,
}


def _distance(rng: random.Random) -> int:
    """A distanceFromObject like Udacity's (200..300); random() is much cheaper than randint() in the hot loop."""
    return 200 + int(rng.random() * 101)


def _device_lines(c: _Customer, rng: random.Random, case_rng: random.Random) -> tuple[list[str], list[str]]:
    """Accelerometer and step lines of one customer's device, newest first like the Udacity files."""
    step_prefix = '{"sensorReadingTime":'
    step_mid = f',"serialNumber":"{c.serial}","distanceFromObject":'
    user_prefixes = [f'{{"user":{json.dumps(u)},"timestamp":' for u in (c.email, *c.user_variants)]
    reads = c.kind in READERS
    acc: list[str] = []
    steps: list[str] = []

    def user_prefix() -> str:
        if not c.user_variants or case_rng.random() >= c.variant_share:
            return user_prefixes[0]
        return case_rng.choice(user_prefixes[1:])

    for j in range(c.times - 1, -1, -1):
        t = c.start + j * c.interval
        if reads:
            for xyz in rng.choice(XYZ_GROUPS[REPEATS[rng.getrandbits(2)]]):
                acc.append(f"{user_prefix()}{t},{xyz}}}")
        if rng.random() < STEP_SHARE:
            steps.append(f"{step_prefix}{t}{step_mid}{_distance(rng)}}}")
    if reads:  # a few step readings at times with no accelerometer reading
        for _ in range(rng.randint(1, 3)):
            t = c.start + rng.randrange(c.times) * c.interval + c.interval // 2
            steps.append(f"{step_prefix}{t}{step_mid}{_distance(rng)}}}")
    if c.shared_time is not None:
        acc.append(f"{user_prefixes[0]}{c.shared_time},{XYZ_FRAGMENTS[0]}}}")
        steps.append(f"{step_prefix}{c.shared_time}{step_mid}{c.shared_distance}}}")
    return acc, (steps if c.has_steps else [])


@dataclass
class _WrittenFile:
    """A written file and its counts (non-blank lines, invalid lines), until it gets its final name."""

    path: Path
    fmt: FileFormat
    lines: int
    invalid: int


Injector = Callable[[list[Line], SourceSpec], tuple[list[Line], int, int]]  # -> lines, invalid, blank


def _constant(overrides: Overrides) -> Callable[[dict, SourceSpec], Overrides]:
    return lambda rec, spec: overrides


def _inject_malformed(rng: random.Random) -> Injector:
    """malformed_lines: value-preserving odd spellings, one line per invalid kind, and blank lines."""

    def inject(lines: list[Line], spec: SourceSpec) -> tuple[list[Line], int, int]:
        out = list(lines)
        targets = rng.sample(range(len(out)), min(len(out), len(VALID_ODDITIES)))  # distinct lines
        for i, oddity in zip(targets, VALID_ODDITIES, strict=False):  # a tiny file gets fewer oddities
            rec = json.loads(out[i])
            out[i] = _render(rec, spec, oddity(rec, spec))
        bad: list[Line] = []
        for make in [*INVALID_KINDS.values(), *(_constant(o) for o in spec.extra_invalid)]:
            rec = json.loads(rng.choice(lines)) if lines else dict(spec.example)
            made = make(rec, spec)
            bad.append(made if isinstance(made, str) else _render(rec, spec, made))
        for line in [*bad, *BLANK_LINES]:
            out.insert(rng.randrange(len(out) + 1), line)
        return out, len(bad), len(BLANK_LINES)

    return inject


def _inject_legacy_keys(rng: random.Random) -> Injector:
    """encodings, accelerometer: the legacy key timeStamp alone, and next to timestamp (which wins)."""

    def inject(lines: list[Line], spec: SourceSpec) -> tuple[list[Line], int, int]:
        out = list(lines)
        if spec.int_field != "timestamp" or len(out) < 2:
            return out, 0, 0
        legacy, both = rng.sample(range(len(out)), 2)
        rec = json.loads(out[legacy])
        out[legacy] = _render(rec, spec, {"timestamp": None, "timeStamp": str(rec["timestamp"])})
        rec = json.loads(out[both])
        out[both] = _render({"timeStamp": rec["timestamp"] - 7, **rec}, spec)
        return out, 0, 0

    return inject


def _inject_non_utf8(rng: random.Random) -> Injector:
    """encodings: one Latin-1 encoded line (an 'é' byte that is not valid UTF-8)."""

    def inject(lines: list[Line], spec: SourceSpec) -> tuple[list[Line], int, int]:
        rec = json.loads(rng.choice(lines)) if lines else dict(spec.example)
        raw = json.dumps("\u00e9" + str(rec[spec.id_field]), ensure_ascii=False)
        line = _render(rec, spec, {spec.id_field: raw}).encode("latin-1")
        out = list(lines)
        out.insert(rng.randrange(len(out) + 1), line)
        return out, 1, 0

    return inject


def _compose(injectors: list[Injector]) -> Injector:
    def inject(lines: list[Line], spec: SourceSpec) -> tuple[list[Line], int, int]:
        invalid = blank = 0
        for one in injectors:
            lines, i, b = one(lines, spec)
            invalid, blank = invalid + i, blank + b
        return lines, invalid, blank

    return inject


class _SourceWriter:
    """Streams one source's lines into LINES_PER_FILE-line files; defects hook the first file and the tails."""

    def __init__(
        self,
        source: str,
        root: Path,
        first_file: Injector | None = None,
        first_tail: Injector | None = None,
        encodings: bool = False,
        tag: str = "part",
    ):
        self.spec, self.tag = SPECS[source], tag
        self.dir = root / source / "landing"
        self.first_file, self.first_tail = first_file, first_tail
        self.tails = self.spec.encoded_files if encodings else ()
        self.buffer: list[str] = []  # generated lines are text; only injectors add bytes
        self.written: list[_WrittenFile] = []

    def add(self, lines: list[str]) -> None:
        self.buffer.extend(lines)
        # Keep at least one file's worth buffered: close() carves the "encodings" files off the end.
        while len(self.buffer) >= 2 * LINES_PER_FILE:
            chunk, self.buffer = self.buffer[:LINES_PER_FILE], self.buffer[LINES_PER_FILE:]
            self._write(chunk, FileFormat())

    def close(self) -> list[_WrittenFile]:
        tail_size = min(1000, len(self.buffer) // (len(self.tails) + 2)) if self.tails else 0
        cut = len(self.buffer) - tail_size * len(self.tails)
        for start in range(0, cut, LINES_PER_FILE):
            self._write(self.buffer[start : min(start + LINES_PER_FILE, cut)], FileFormat())
        if not self.written:  # every source gets a file, even an empty one
            self._write([], FileFormat())
        for k, fmt in enumerate(self.tails):
            chunk = self.buffer[cut + k * tail_size : cut + (k + 1) * tail_size]
            self._write(chunk, fmt, self.first_tail if k == 0 else None)
        return self.written

    def _write(self, lines: list[str], fmt: FileFormat, inject: Injector | None = None) -> None:
        if not self.written:  # the source's first file, whatever its format, takes the malformed lines
            inject = self.first_file
        invalid = blank = 0
        newline = "\r\n" if fmt.crlf else "\n"
        if inject is None:  # the fast path: only str lines
            line_count = len(lines)
            data = "".join(ln + newline for ln in lines).encode()
        else:  # injected lines may be bytes (not UTF-8)
            injected, invalid, blank = inject(list[Line](lines), self.spec)
            line_count = len(injected)
            data = b"".join((ln if isinstance(ln, bytes) else ln.encode()) + newline.encode() for ln in injected)
        data = (b"\xef\xbb\xbf" if fmt.bom else b"") + data
        if fmt.gzip:
            data = gzip.compress(data, mtime=0)  # mtime=0: byte-identical reruns
        # A hidden temporary name: final names need the delivery order of all sources (see _name_files).
        path = self.dir / fmt.subdir / f".{self.tag}-{len(self.written):05d}{fmt.suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.written.append(_WrittenFile(path, fmt, line_count - blank, invalid))


def _check_arguments(out: Path, customers: int, defects: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(defects) if not isinstance(defects, str) else frozenset({defects})
    unknown = sorted(chosen - set(DEFECTS))
    if unknown:
        raise ValueError(f"unknown defect(s) {unknown}; known defects are {list(DEFECTS)}")
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 1:
        raise ValueError(f"customers must be an integer >= 1, got {customers!r}")
    for source in SOURCES:
        landing = out / source / "landing"
        if landing.exists() and any(landing.iterdir()):  # mixing two trees would break every count
            raise FileExistsError(f"{landing} is not empty; generate into a fresh directory")
    return chosen


def _sub_rng(seed: int, purpose: str) -> random.Random:
    """One RNG per purpose: enabling a defect must not shift the draws of the base data or other defects."""
    return random.Random(f"stedi-generator:{seed}:{purpose}")


def _customer_lines(plan: list[_Customer], extra: _Defected) -> list[str]:
    spec = SPECS["customer"]
    lines = []
    for c in plan:
        lines += [_render(rec, spec) for rec in extra.before_line.get(c.number, [])]
        lines.append(_render(c.record(), spec))
    return lines


def _name_files(written: list[tuple[str, _WrittenFile]], root: Path, rng: random.Random) -> dict[str, list[Path]]:
    """Give the files Udacity-like names, <source>-<epochms>, increasing in delivery order."""
    files: dict[str, list[Path]] = {s: [] for s in SOURCES}
    stamp = FILE_STAMP_MS + rng.randrange(1_000_000)
    for source, wf in written:
        stamp += rng.randint(20, 150)
        final = root / source / "landing" / wf.fmt.subdir / f"{source}-{stamp}{wf.fmt.suffix}"
        wf.path.rename(final)
        wf.path = final
        files[source].append(final)
    return files


def generate_landing(
    out: str | os.PathLike, customers: int = 100, seed: int = 0, defects: Iterable[str] = ()
) -> GeneratedLanding:
    """Write a deterministic STEDI landing tree under `out` and report what was written.

    `defects` names any of DEFECTS; the same arguments always give byte-identical files.
    """
    root = Path(out)
    chosen = _check_arguments(root, customers, defects)
    plan = _plan_customers(customers, _sub_rng(seed, "customers"))
    extra = _Defected()
    slices = _defect_slices(plan, _sub_rng(seed, "defect-pools"))
    for name, apply in CUSTOMER_DEFECTS.items():
        if name in chosen:
            apply(slices[name], _sub_rng(seed, name), extra)

    encodings = "encodings" in chosen
    writers = {s: _SourceWriter(s, root, *_hooks(seed, s, chosen), encodings=encodings) for s in SOURCES}
    writers["customer"].add(_customer_lines(plan, extra))
    readings_rng, case_rng = _sub_rng(seed, "readings"), _sub_rng(seed, "email_case-users")
    for c in plan:
        acc, steps = _device_lines(c, readings_rng, case_rng)
        writers["accelerometer"].add(acc)
        writers["step_trainer"].add(steps)

    delivered = [(s, wf) for s in SOURCES for wf in writers[s].close()]
    if extra.update_file:  # a separate customer delivery, after all the others
        update = _SourceWriter("customer", root, tag="update")
        update.add([_render(rec, SPECS["customer"]) for rec in extra.update_file])
        delivered += [("customer", wf) for wf in update.close()]
    if "redelivered_files" in chosen:
        for source in ("accelerometer", "step_trainer"):
            delivered.append((source, _redeliver(next(wf for s, wf in delivered if s == source))))

    files = _name_files(delivered, root, _sub_rng(seed, "file-names"))
    lines = {s: sum(wf.lines for src, wf in delivered if src == s) for s in SOURCES}
    invalid = {s: sum(wf.invalid for src, wf in delivered if src == s) for s in SOURCES}
    return GeneratedLanding(root=root, lines=lines, invalid_lines=invalid, files=files)


def _hooks(seed: int, source: str, chosen: frozenset[str]) -> tuple[Injector | None, Injector | None]:
    """Injectors for the first file (malformed_lines) and the first 'encodings' file of a source."""
    first = _inject_malformed(_sub_rng(seed, f"malformed_lines:{source}")) if "malformed_lines" in chosen else None
    tail = None
    if "encodings" in chosen:  # re-render pristine records first, then add the broken line
        tail = _compose(
            [
                _inject_legacy_keys(_sub_rng(seed, f"encodings:{source}")),
                _inject_non_utf8(_sub_rng(seed, f"non-utf8:{source}")),
            ]
        )
    return first, tail


def _redeliver(original: _WrittenFile) -> _WrittenFile:
    """The same bytes again under another (later) name, as a re-sent delivery would be."""
    copy = original.path.with_name(".redelivered-" + original.path.name)
    copy.write_bytes(original.path.read_bytes())
    return _WrittenFile(copy, original.fmt, original.lines, original.invalid)
