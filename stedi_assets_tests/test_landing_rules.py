"""Landing rules of ZONE_RULES.md, one by one, on hand-written lines, each on both landing readers: the
Python reference (reader.py) and the DuckDB one (duckdb_reader.py).

Unit level: one line through a reader (bytes -> typed values or a reason, as `parse_line` gives them),
`validate` (one JSON value) and the reader over a landing folder (-> rows, rejected lines, stats). End to
end: the landing group materialized over a small landing folder, read back from the published tables.
"""

from __future__ import annotations

import contextlib
import gzip

import dagster as dg
import pytest

from stedi_assets.storage.lake import open_lake
from stedi_assets.storage.stores import LocalStore
from stedi_assets.zones.landing.duckdb_reader import read_source_duckdb
from stedi_assets.zones.landing.reader import read_source
from stedi_assets.zones.landing.schema import (
    ACCELEROMETER_LANDING,
    CUSTOMER_LANDING,
    SOURCE_OF,
    STEP_TRAINER_LANDING,
    source_columns,
)
from stedi_assets.zones.landing.validation import FIELDS, Invalid, validate
from stedi_assets_tests.conftest import checks_of, read_table, run_pipeline, write_landing

ABSENT = object()  # marks a key left out of the line

# A valid record of each source, as raw JSON text per field, so numbers can be written exactly (1e3, 1.0, NaN).
BASE = {
    "customer": {
        "customerName": '"Ann Lee"',
        "email": '"ann@x.com"',
        "phone": '"555-0100"',
        "birthDay": '"1990-01-01"',
        "serialNumber": '"S-1"',
        "registrationDate": "1655564000000",
        "lastUpdateDate": "1655564444058",
        "shareWithResearchAsOfDate": "1655564444058",
        "shareWithPublicAsOfDate": "null",
        "shareWithFriendsAsOfDate": "null",
    },
    "accelerometer": {"user": '"ann@x.com"', "timestamp": "1655564444058", "x": "1.0", "y": "-0.5", "z": "0"},
    "step_trainer": {"sensorReadingTime": "1655564444058", "serialNumber": '"S-1"', "distanceFromObject": "212"},
}


def line(source: str, **raw) -> bytes:
    """A line of `source`: the base record with some fields replaced by raw JSON text (or ABSENT)."""
    fields = {**BASE[source], **raw}
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not ABSENT) + "}").encode()


def column(source: str, values: tuple, key: str):
    return values[[k for k, _, _ in FIELDS[source]].index(key)]


def assert_valid(parse, source: str, raw: bytes) -> tuple:
    values, reason = parse(source, raw)
    assert reason is None, f"{raw!r} rejected: {reason}"
    return values


def assert_invalid(parse, source: str, raw: bytes, mentions: str | None = None) -> str:
    values, reason = parse(source, raw)
    assert values is None, f"{raw!r} accepted as {values}"
    assert reason, "a rejected line needs a reason"
    if mentions:
        assert mentions in reason, f"reason {reason!r} should name {mentions!r}"
    return reason


# ----------------------------------------------------------------------------------- the contract's fields

# What the parser of each contract type says of a value of the wrong kind (a JSON true).
WRONG_KIND = {
    "string": "is a boolean, not a string",
    "bigint": "is a boolean, not an integer",
    "double": "is a boolean, not a number",
}


def test_the_validators_fields_are_the_landing_contracts_json_columns():
    for spec in (CUSTOMER_LANDING, ACCELEROMETER_LANDING, STEP_TRAINER_LANDING):
        columns, fields = source_columns(spec), FIELDS[SOURCE_OF[spec.name]]
        assert [c.name for c in spec.columns] == [c.name for c in columns] + ["source_file", "source_line"]
        assert [(c.name, c.required) for c in columns] == [(key, required) for key, _, required in fields]
        for c, (_, parse, _) in zip(columns, fields, strict=True):
            with pytest.raises(Invalid, match=WRONG_KIND[c.type]):
                parse(True)
            if c.type == "string":  # an identity or a serial must say something; other strings may be blank
                blank = pytest.raises(Invalid, match="is empty") if c.nonblank else contextlib.nullcontext()
                with blank:
                    parse("  ")


# --------------------------------------------------------------------------------------------- integers

INTEGER_FIELDS = [
    ("customer", "registrationDate"),
    ("customer", "lastUpdateDate"),
    ("customer", "shareWithResearchAsOfDate"),
    ("customer", "shareWithPublicAsOfDate"),
    ("customer", "shareWithFriendsAsOfDate"),
    ("accelerometer", "timestamp"),
    ("step_trainer", "sensorReadingTime"),
]

VALID_INTEGERS = [
    ("1655564444058", 1655564444058),
    ("1655564444058.0", 1655564444058),  # a whole number written with a fraction
    ("1e3", 1000),  # ... or with an exponent
    ("1E3", 1000),
    ("1.5e1", 15),
    ("0", 0),
    ("-5", -5),
    (str(2**63 - 1), 2**63 - 1),  # the 64-bit bounds
    (str(-(2**63)), -(2**63)),
]

INVALID_INTEGERS = [
    "1.5",
    "1655564444058.5",
    "1e-3",  # not whole
    '"1655564444058"',
    '"1e3"',
    '""',  # a string is never a number
    "true",
    "false",  # booleans are not numbers
    str(2**63),
    str(-(2**63) - 1),
    "1e19",
    "123456789012345678901234567890",  # beyond 64 bits
    "[1655564444058]",
    '{"$date": 1655564444058}',
]

NON_NUMBER_CONSTANTS = ["NaN", "Infinity", "-Infinity"]  # not JSON at all; Python's json would take them


@pytest.mark.parametrize("source,key", INTEGER_FIELDS)
@pytest.mark.parametrize("raw,expected", VALID_INTEGERS)
def test_integer_fields_accept_whole_numbers_in_64_bits(parse, source, key, raw, expected):
    values = assert_valid(parse, source, line(source, **{key: raw}))
    got = column(source, values, key)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("source,key", INTEGER_FIELDS)
@pytest.mark.parametrize("raw", INVALID_INTEGERS)
def test_integer_fields_reject_fractions_strings_booleans_and_overflow(parse, source, key, raw):
    assert_invalid(parse, source, line(source, **{key: raw}), mentions=key)


@pytest.mark.parametrize("source,key", INTEGER_FIELDS)
@pytest.mark.parametrize("raw", NON_NUMBER_CONSTANTS)
def test_integer_fields_reject_nan_and_infinity(parse, source, key, raw):
    assert_invalid(parse, source, line(source, **{key: raw}))


@pytest.mark.parametrize(
    "source,key",
    [
        ("customer", "registrationDate"),
        ("customer", "lastUpdateDate"),
        ("accelerometer", "timestamp"),
        ("step_trainer", "sensorReadingTime"),
    ],
)
@pytest.mark.parametrize("raw", ["null", ABSENT])
def test_required_integers_cannot_be_null_or_absent(parse, source, key, raw):
    assert_invalid(parse, source, line(source, **{key: raw}), mentions=key)


@pytest.mark.parametrize("key", ["shareWithResearchAsOfDate", "shareWithPublicAsOfDate", "shareWithFriendsAsOfDate"])
@pytest.mark.parametrize("raw", ["null", ABSENT])
def test_consent_dates_may_be_null_or_absent(parse, key, raw):
    values = assert_valid(parse, "customer", line("customer", **{key: raw}))
    assert column("customer", values, key) is None


# ---------------------------------------------------------------------------------------------- numbers

NUMBER_FIELDS = [
    ("accelerometer", "x"),
    ("accelerometer", "y"),
    ("accelerometer", "z"),
    ("step_trainer", "distanceFromObject"),
]


@pytest.mark.parametrize("source,key", NUMBER_FIELDS)
@pytest.mark.parametrize(
    "raw,expected",
    [("1", 1.0), ("-0.25", -0.25), ("1e-3", 0.001), ("0", 0.0), ("212", 212.0), ("1655564444058", 1655564444058.0)],
)
def test_number_fields_accept_numbers_stored_as_double(parse, source, key, raw, expected):
    got = column(source, assert_valid(parse, source, line(source, **{key: raw})), key)
    assert got == expected and type(got) is float


@pytest.mark.parametrize("source,key", NUMBER_FIELDS)
@pytest.mark.parametrize("raw", ['"1"', '"1.0"', "true", "false", "null", ABSENT, "[1]", "{}"])
def test_number_fields_reject_strings_booleans_null_and_absent(parse, source, key, raw):
    assert_invalid(parse, source, line(source, **{key: raw}), mentions=key)


@pytest.mark.parametrize("source,key", NUMBER_FIELDS)
@pytest.mark.parametrize("raw", NON_NUMBER_CONSTANTS + ["1e400", "-1e400"])
def test_number_fields_reject_nan_and_infinity(parse, source, key, raw):
    assert_invalid(parse, source, line(source, **{key: raw}))


# -------------------------------------------------------------------------------- identity/serial strings

KEY_STRING_FIELDS = [
    ("customer", "email"),
    ("customer", "serialNumber"),
    ("accelerometer", "user"),
    ("step_trainer", "serialNumber"),
]


@pytest.mark.parametrize("source,key", KEY_STRING_FIELDS)
@pytest.mark.parametrize(
    "raw,expected",
    [
        ('"ann@x.com"', "ann@x.com"),
        ('"  Ann@X.com "', "  Ann@X.com "),  # valid, and kept as written (keys are derived later)
        ('"\\t"', "\t"),  # trim removes spaces only: a tab-only value is non-empty
        ('" \\t "', " \t "),
        ('"\\u00a0"', "\u00a0"),  # a no-break space is not U+0020 either
    ],
)
def test_key_strings_accept_anything_non_empty_after_trimming_spaces(parse, source, key, raw, expected):
    assert column(source, assert_valid(parse, source, line(source, **{key: raw})), key) == expected


@pytest.mark.parametrize("source,key", KEY_STRING_FIELDS)
@pytest.mark.parametrize("raw", ['""', '" "', '"     "', "null", ABSENT, "5", "true", '["ann@x.com"]', "{}"])
def test_key_strings_reject_empty_spaces_only_non_strings_null_and_absent(parse, source, key, raw):
    assert_invalid(parse, source, line(source, **{key: raw}), mentions=key)


@pytest.mark.parametrize("key", ["customerName", "phone", "birthDay"])
@pytest.mark.parametrize("raw,expected", [('"x"', "x"), ('""', ""), ('"  "', "  "), ("null", None), (ABSENT, None)])
def test_optional_customer_strings_may_be_any_string_null_or_absent(parse, key, raw, expected):
    assert column("customer", assert_valid(parse, "customer", line("customer", **{key: raw})), key) == expected


@pytest.mark.parametrize("key", ["customerName", "phone", "birthDay"])
@pytest.mark.parametrize("raw", ["5", "19900101", "true", '["x"]', "{}"])
def test_optional_customer_strings_reject_non_strings(parse, key, raw):
    assert_invalid(parse, "customer", line("customer", **{key: raw}), mentions=key)


@pytest.mark.parametrize(
    "key,raw", [("phone", "8015550147"), ("customerName", "7.5e1"), ("email", "8015550147"), ("birthDay", "19710203")]
)
def test_a_reason_names_the_kind_of_a_personal_value_never_the_value(parse, key, raw):
    reason = assert_invalid(parse, "customer", line("customer", **{key: raw}), mentions=key)
    assert reason == f"{key} is a number, not a string"  # the reason is shown in previews and reports


# --------------------------------------------------------------------------------------- record shapes


@pytest.mark.parametrize("raw", [b"[1, 2]", b'[{"email": "ann@x.com"}]', b'"ann@x.com"', b"42", b"null", b"true"])
def test_a_line_that_is_json_but_not_an_object_is_rejected(parse, raw):
    assert "not a JSON object" in assert_invalid(parse, "customer", raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"email": "ann@x.com"',
        b"{'email': 'ann@x.com'}",
        b"not json",
        line("accelerometer") + b" {}",
        line("accelerometer") + b",",
    ],
)
def test_a_line_that_is_not_json_is_rejected(parse, raw):
    assert "not valid JSON" in assert_invalid(parse, "accelerometer", raw)


@pytest.mark.parametrize(
    "raw",
    [
        line("accelerometer").replace(b'"ann@x.com"', b'"ann\xff@x.com"'),  # a stray byte
        line("accelerometer").replace(b'"ann@x.com"', b'"ann\xc0\xaf@x.com"'),  # overlong encoding
        line("accelerometer").replace(b'"ann@x.com"', b'"ann\xed\xa0\x80@x.com"'),  # an encoded surrogate
        b"\xff\xfe{}",
    ],
)
def test_a_line_that_is_not_valid_utf8_is_rejected(parse, raw):
    assert "UTF-8" in assert_invalid(parse, "accelerometer", raw)


def test_valid_utf8_beyond_ascii_is_fine(parse):
    values = assert_valid(parse, "customer", line("customer", customerName='"Zoë Ångström 山田"', email='"zoë@x.com"'))
    assert column("customer", values, "customerName") == "Zoë Ångström 山田"
    assert column("customer", values, "email") == "zoë@x.com"


@pytest.mark.parametrize("source", list(BASE))
def test_unknown_keys_are_ignored(parse, source):
    plain = assert_valid(parse, source, line(source))
    extra = assert_valid(
        parse, source, line(source, Email='"other@x.com"', extra='{"deep": [1, "two", null]}', note="null", flag="true")
    )
    assert extra == plain


def test_validate_returns_typed_values_in_column_order():
    record = {"x": 3, "z": 1.5, "user": "ann@x.com", "y": -1, "timestamp": 1e3, "other": "ignored"}
    assert validate("accelerometer", record) == ("ann@x.com", 1000, 3.0, -1.0, 1.5)
    assert [c.name for c in ACCELEROMETER_LANDING.columns][:5] == ["user", "timestamp", "x", "y", "z"]


@pytest.mark.parametrize("record", [[], "ann@x.com", 1, None, True])
def test_validate_rejects_non_objects(record):
    with pytest.raises(Invalid, match="not a JSON object"):
        validate("step_trainer", record)


# ------------------------------------------------------------------------------------- legacy timeStamp


@pytest.mark.parametrize(
    "raw,expected",
    [
        (line("accelerometer", timestamp=ABSENT, timeStamp="1655564444058"), 1655564444058),
        (line("accelerometer", timestamp=ABSENT, timeStamp="1e3"), 1000),
        (line("accelerometer", timestamp="5", timeStamp="7"), 5),
        (line("accelerometer", timestamp="5", timeStamp='"not a time"'), 5),  # timestamp wins, even over garbage
        (line("accelerometer", timestamp="5", timeStamp="1.5"), 5),
        (line("accelerometer", timeStamp="null", timestamp="5"), 5),
    ],
)
def test_legacy_timeStamp_is_accepted_and_timestamp_wins(parse, raw, expected):
    assert column("accelerometer", assert_valid(parse, "accelerometer", raw), "timestamp") == expected


@pytest.mark.parametrize(
    "raw,mentions",
    [
        (line("accelerometer", timestamp='"5"', timeStamp="7"), "timestamp"),  # timestamp wins, even when invalid
        (line("accelerometer", timestamp="1.5", timeStamp="7"), "timestamp"),
        (line("accelerometer", timestamp="null", timeStamp="7"), "timestamp"),
        (line("accelerometer", timestamp=ABSENT, timeStamp="1.5"), "timeStamp"),
        (line("accelerometer", timestamp=ABSENT, timeStamp='"7"'), "timeStamp"),
        (line("accelerometer", timestamp=ABSENT), "timestamp"),
        (line("accelerometer", timestamp=ABSENT, TimeStamp="7"), "timestamp"),  # only the exact legacy key counts
    ],
)
def test_legacy_timeStamp_rejections(parse, raw, mentions):
    assert_invalid(parse, "accelerometer", raw, mentions=mentions)


def test_timeStamp_is_not_accepted_for_other_sources(parse):
    assert_invalid(
        parse,
        "step_trainer",
        line("step_trainer", sensorReadingTime=ABSENT, timeStamp="5"),
        mentions="sensorReadingTime",
    )


# ------------------------------------------------------------------------------------------ read_source

SCHEMAS = {"customer": CUSTOMER_LANDING, "accelerometer": ACCELEROMETER_LANDING, "step_trainer": STEP_TRAINER_LANDING}


READERS = {"python": read_source, "duckdb": read_source_duckdb}


@pytest.fixture(params=list(READERS))
def read(request, tmp_path):
    """A reader (each rule is tested on both) over the landing folder `tmp_path`: source -> (rows as dicts,
    rejected as dicts, stats)."""

    def read_tmp(source: str):
        rows, rejected = [], []
        stats = READERS[request.param](
            LocalStore(tmp_path),
            source,
            SCHEMAS[source].arrow_schema("strict"),
            lambda b: rows.extend(b.to_pylist()),
            lambda b: rejected.extend(b.to_pylist()),
        )
        return rows, rejected, stats

    return read_tmp


@pytest.fixture
def parse(read, tmp_path):
    """parse_line through a whole reader: one line -> (typed values, None) or (None, reason)."""

    def parse_through_reader(source: str, raw: bytes):
        assert b"\n" not in raw
        folder = tmp_path / source
        folder.mkdir(exist_ok=True)
        (folder / "line.json").write_bytes(b"\n" + raw)  # line 2: a leading BOM stays part of the line
        rows, rejected, _ = read(source)
        assert len(rows) + len(rejected) == 1, f"{raw!r} was read as a blank line"
        if rows:
            return tuple(rows[0][key] for key, _, _ in FIELDS[source]), None
        return None, rejected[0]["reason"]

    return parse_through_reader


def test_read_source_bom_crlf_and_blank_lines(read, tmp_path):
    ok = line("step_trainer")
    data = (
        b"\xef\xbb\xbf"
        + ok
        + b"\r\n"  # 1: BOM at file start, CRLF
        + b"\r\n"  # 2: blank (only a CR)
        + b"   \t \r\n"  # 3: blank (spaces and a tab)
        + line("step_trainer", serialNumber='" "')
        + b"\r\n"  # 4: rejected
        + b"\n"  # 5: blank
        + ok
    )  # 6: valid, no final newline
    (tmp_path / "step_trainer").mkdir()
    (tmp_path / "step_trainer" / "s.json").write_bytes(data)
    rows, rejected, stats = read("step_trainer")
    assert [(r["source_file"], r["source_line"]) for r in rows] == [
        ("step_trainer/s.json", 1),
        ("step_trainer/s.json", 6),
    ]
    assert rows[0]["serialNumber"] == "S-1" and rows[0]["distanceFromObject"] == 212.0
    assert len(rejected) == 1
    bad = rejected[0]
    assert (bad["source"], bad["source_file"], bad["source_line"]) == ("step_trainer", "step_trainer/s.json", 4)
    assert bad["raw"] == line("step_trainer", serialNumber='" "').decode()  # no CR kept
    assert "serialNumber" in bad["reason"]
    assert (stats.rows, stats.rejected, stats.blank_lines) == (2, 1, 3)
    assert stats.rows + stats.rejected == 6 - stats.blank_lines


def test_read_source_bom_only_counts_at_file_start(read, tmp_path):
    (tmp_path / "accelerometer").mkdir()
    (tmp_path / "accelerometer" / "a.json").write_bytes(
        line("accelerometer") + b"\n" + b"\xef\xbb\xbf" + line("accelerometer") + b"\n"
    )
    rows, rejected, _ = read("accelerometer")
    assert [r["source_line"] for r in rows] == [1]
    assert [r["source_line"] for r in rejected] == [2]


def test_read_source_file_kinds_depth_and_ignored_files(read, tmp_path):
    src = tmp_path / "customer"
    (src / "2022" / "06" / "18").mkdir(parents=True)
    (src / "a.json").write_bytes(line("customer", email='"a@x.com"') + b"\n")
    (src / "2022" / "b.jsonl").write_bytes(line("customer", email='"b@x.com"') + b"\n")
    (src / "2022" / "06" / "c.json.gz").write_bytes(
        gzip.compress(
            b"\xef\xbb\xbf" + line("customer", email='"c@x.com"') + b"\r\n\r\n" + line("customer", email='""') + b"\r\n"
        )
    )
    (src / "2022" / "06" / "18" / "d.jsonl.gz").write_bytes(gzip.compress(line("customer", email='"d@x.com"')))
    for other in ("README.md", "e.json.bak", "f.csv", "g.gz", "2022/i.txt"):
        (src / other).write_bytes(line("customer", email='"ignored@x.com"') + b"\n")
    rows, rejected, stats = read("customer")
    assert sorted((r["email"], r["source_file"], r["source_line"]) for r in rows) == [
        ("a@x.com", "customer/a.json", 1),
        ("b@x.com", "customer/2022/b.jsonl", 1),
        ("c@x.com", "customer/2022/06/c.json.gz", 1),
        ("d@x.com", "customer/2022/06/18/d.jsonl.gz", 1),
    ]
    assert [(r["source_file"], r["source_line"]) for r in rejected] == [("customer/2022/06/c.json.gz", 3)]
    assert sorted(stats.ignored_files) == sorted(
        f"customer/{p}" for p in ("README.md", "e.json.bak", "f.csv", "g.gz", "2022/i.txt")
    )
    assert stats.blank_lines == 1


def test_read_source_keeps_duplicates(read, tmp_path):
    write_landing(tmp_path, "accelerometer", [line("accelerometer")] * 3)
    rows, rejected, stats = read("accelerometer")
    assert len(rows) == 3 and not rejected
    assert [r["source_line"] for r in rows] == [1, 2, 3]


def test_read_source_of_an_empty_or_missing_source(read):
    rows, rejected, stats = read("step_trainer")
    assert (rows, rejected, stats.files, stats.rows, stats.rejected) == ([], [], {}, 0, 0)


# ------------------------------------------------------------------------------------ end to end (landing)

CUSTOMER_1 = [  # customer/landing/part-1.json, CRLF endings, BOM at the start
    b"\xef\xbb\xbf" + line("customer", email='"alice@x.com"'),  # 1 valid
    b"",  # 2 blank
    line("customer", email='"bob@x.com"', shoeSize="44", shareWithResearchAsOfDate=ABSENT),  # 3 valid
    b"   \t ",  # 4 blank
    line("customer", email='"   "'),  # 5 email spaces only
    b"[1, 2]",  # 6 not an object
    b'{"email": "\xff\xfe"}',  # 7 not UTF-8
    line("customer", email='"dan@x.com"', registrationDate="1.5"),  # 8 not whole
    line("customer", email='"\\t"'),  # 9 valid: tab-only
]
CUSTOMER_2 = [  # customer/2022/06/more.jsonl.gz
    line("customer", email='"carol@x.com"'),  # 1 valid
    b"",  # 2 blank
    line("customer", email='"erin@x.com"', lastUpdateDate='"1655564444058"'),  # 3 string, not a number
]
ACCEL = [  # accelerometer/landing/a.jsonl
    line("accelerometer", timestamp=ABSENT, timeStamp="1655564444001"),  # 1 legacy key
    line("accelerometer", timestamp="1655564444002", timeStamp='"junk"'),  # 2 timestamp wins
    line("accelerometer", x='"1"'),  # 3 string x
    b'{"user": "ann@x.com", "timestamp": 1, "x": NaN, "y": 0, "z": 0}',  # 4 NaN
    line("accelerometer", timestamp="1e3"),  # 5 valid
    line("accelerometer", timestamp="1e3"),  # 6 duplicate: kept
    b"",  # 7 blank
    line("accelerometer", y="true"),  # 8 boolean y
]
STEP_GZ = [  # step_trainer/landing/s.json.gz
    line("step_trainer"),  # 1 valid
    line("step_trainer", distanceFromObject="true"),  # 2 boolean
    line("step_trainer", serialNumber='""'),  # 3 empty serial
    line("step_trainer", sensorReadingTime=str(2**64)),  # 4 beyond 64 bits
]
STEP_DEEP = [  # step_trainer/deep/er/x.json
    line("step_trainer", sensorReadingTime="1655564444058.0", serialNumber='"S-2"'),  # 1 valid
]

EXPECTED_REJECTED = {  # (source, file, line) -> a word the reason must contain
    ("customer", "customer/landing/part-1.json", 5): "email",
    ("customer", "customer/landing/part-1.json", 6): "not a JSON object",
    ("customer", "customer/landing/part-1.json", 7): "UTF-8",
    ("customer", "customer/landing/part-1.json", 8): "registrationDate",
    ("customer", "customer/2022/06/more.jsonl.gz", 3): "lastUpdateDate",
    ("accelerometer", "accelerometer/landing/a.jsonl", 3): "x",
    ("accelerometer", "accelerometer/landing/a.jsonl", 4): "NaN",
    ("accelerometer", "accelerometer/landing/a.jsonl", 8): "y",
    ("step_trainer", "step_trainer/landing/s.json.gz", 2): "distanceFromObject",
    ("step_trainer", "step_trainer/landing/s.json.gz", 3): "serialNumber",
    ("step_trainer", "step_trainer/landing/s.json.gz", 4): "sensorReadingTime",
}
NON_BLANK = {"customer": 7 + 2, "accelerometer": 7, "step_trainer": 4 + 1}
IGNORED = {
    "customer_landing": ["customer/landing/README.md"],
    "accelerometer_landing": ["accelerometer/landing/old.json.bak"],
    "step_trainer_landing": [],
}


@pytest.fixture(scope="module", params=list(READERS))
def landed(request, tmp_path_factory):
    """The landing group materialized by each reader (STEDI_LANDING_READER)."""
    root = tmp_path_factory.mktemp("landing_e2e")
    landing, lake = root / "landing", root / "lake"
    write_landing(landing, "customer", [line + b"\r" for line in CUSTOMER_1])
    more = landing / "customer" / "2022" / "06" / "more.jsonl.gz"
    more.parent.mkdir(parents=True)
    more.write_bytes(gzip.compress(b"\n".join(CUSTOMER_2) + b"\n"))
    (landing / "customer" / "landing" / "README.md").write_text("not data\n")
    write_landing(landing, "accelerometer", ACCEL, name="a.jsonl")
    (landing / "accelerometer" / "landing" / "old.json.bak").write_bytes(line("accelerometer") + b"\n")
    gz = landing / "step_trainer" / "landing" / "s.json.gz"
    gz.parent.mkdir(parents=True)
    gz.write_bytes(gzip.compress(b"\n".join(STEP_GZ)))
    deep = landing / "step_trainer" / "deep" / "er" / "x.json"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"\n".join(STEP_DEEP) + b"\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("STEDI_LANDING_READER", request.param)
        result = run_pipeline(landing, lake, selection=dg.AssetSelection.groups("landing"))
    return result, lake


def test_landing_run_succeeds_with_its_checks(landed):
    result, _ = landed
    assert result.success
    checks = checks_of(result)
    for table in ("customer_landing", "accelerometer_landing", "step_trainer_landing"):
        assert checks[(table, "reconciliation")].passed
    assert checks[("rejected", "quarantine_complete")].passed
    assert not any(key[0].endswith("_trusted") or key[0].endswith("_curated") for key in checks)


def test_landing_customer_rows(landed):
    _, lake = landed
    rows = read_table(lake, "landing", "customer_landing")
    assert sorted((r["email"], r["source_file"], r["source_line"]) for r in rows) == [
        ("\t", "customer/landing/part-1.json", 9),
        ("alice@x.com", "customer/landing/part-1.json", 1),  # the BOM did not spoil line 1
        ("bob@x.com", "customer/landing/part-1.json", 3),
        ("carol@x.com", "customer/2022/06/more.jsonl.gz", 1),
    ]
    bob = next(r for r in rows if r["email"] == "bob@x.com")
    assert bob["shareWithResearchAsOfDate"] is None and "shoeSize" not in bob
    assert bob["registrationDate"] == 1655564000000 and bob["customerName"] == "Ann Lee"


def test_landing_accelerometer_rows(landed):
    _, lake = landed
    rows = read_table(lake, "landing", "accelerometer_landing")
    assert sorted((r["source_line"], r["timestamp"]) for r in rows) == [
        (1, 1655564444001),
        (2, 1655564444002),
        (5, 1000),
        (6, 1000),
    ]  # duplicates kept


def test_landing_step_trainer_rows(landed):
    _, lake = landed
    rows = read_table(lake, "landing", "step_trainer_landing")
    assert sorted((r["source_file"], r["source_line"], r["sensorReadingTime"], r["serialNumber"]) for r in rows) == [
        ("step_trainer/deep/er/x.json", 1, 1655564444058, "S-2"),
        ("step_trainer/landing/s.json.gz", 1, 1655564444058, "S-1"),
    ]


def test_quarantine_rows_carry_source_file_line_raw_and_reason(landed):
    _, lake = landed
    rejected = read_table(lake, "landing", "rejected")
    by_place = {(r["source"], r["source_file"], r["source_line"]): r for r in rejected}
    assert len(by_place) == len(rejected), "one quarantine row per rejected line"
    assert set(by_place) == set(EXPECTED_REJECTED)
    for place, word in EXPECTED_REJECTED.items():
        assert word in by_place[place]["reason"], (place, by_place[place]["reason"])
    raw = {place: r["raw"] for place, r in by_place.items()}
    assert raw[("customer", "customer/landing/part-1.json", 5)] == CUSTOMER_1[4].decode()  # CR stripped
    assert raw[("customer", "customer/landing/part-1.json", 6)] == "[1, 2]"
    assert raw[("customer", "customer/landing/part-1.json", 7)] == '{"email": "\\xff\\xfe"}'
    assert raw[("step_trainer", "step_trainer/landing/s.json.gz", 4)] == STEP_GZ[3].decode()


def test_valid_plus_rejected_equals_non_blank_lines(landed):
    _, lake = landed
    rejected = read_table(lake, "landing", "rejected")
    for source, table in (
        ("customer", "customer_landing"),
        ("accelerometer", "accelerometer_landing"),
        ("step_trainer", "step_trainer_landing"),
    ):
        valid = len(read_table(lake, "landing", table))
        quarantined = sum(1 for r in rejected if r["source"] == source)
        assert valid + quarantined == NON_BLANK[source], source
        # each landing snapshot keeps its own rejected part too
        assert len(read_table(lake, "landing", table, part="rejected")) == quarantined


def test_files_with_other_names_are_ignored_but_reported(landed):
    result, lake = landed
    current = open_lake(str(lake))
    for table, ignored in IGNORED.items():
        snapshot = current.current("landing", table)
        assert snapshot.extra["ignored_files"] == ignored
        assert not any(f in ignored for f in snapshot.extra["landing_files"])
    metadata = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata["customer_landing"]["ignored_files"].value == 1
    assert metadata["step_trainer_landing"]["ignored_files"].value == 0
    assert metadata["customer_landing"]["rejected_lines"].value == 5


def test_each_landing_snapshot_names_the_reader_that_made_it(landed, request):
    _, lake = landed
    current = open_lake(str(lake))
    reader = request.node.callspec.params["landed"]
    extras = [current.current("landing", table).extra for table in IGNORED]
    assert {extra["engine"] for extra in extras} == {reader}
    assert (sum(extra["fast_lines"] for extra in extras) > 0) == (reader == "duckdb")  # lines typed set-wise


# ------------------------------------------------ regressions: bugs these tests found, now fixed


def test_number_too_large_for_a_double_is_rejected_not_a_crash(parse):
    assert_invalid(parse, "accelerometer", line("accelerometer", x="1" + "0" * 400), mentions="x")


def test_deeply_nested_json_is_rejected_not_a_crash(parse):
    assert_invalid(parse, "customer", b"[" * 100_000 + b"]" * 100_000)


def test_lone_surrogate_escape_does_not_crash_the_reader(read, tmp_path):
    write_landing(tmp_path, "accelerometer", [line("accelerometer", user='"\\ud800ann@x.com"'), line("accelerometer")])
    rows, rejected, stats = read("accelerometer")
    assert stats.rows + stats.rejected == 2
    assert [r["source_line"] for r in rows] == [2]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("1655564444058.0000001", None),  # not a whole number: must be rejected
        ("9007199254740993.0", 9007199254740993),  # whole, fits: must keep its exact value
        ("9223372036854775807.0", 2**63 - 1),  # whole, fits 64 bits: must be accepted
    ],
)
def test_integer_written_as_decimal_is_judged_on_its_exact_value(parse, raw, expected):
    values, reason = parse("accelerometer", line("accelerometer", timestamp=raw))
    if expected is None:
        assert values is None and "timestamp" in reason
    else:
        assert reason is None and column("accelerometer", values, "timestamp") == expected
