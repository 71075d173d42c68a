"""Whom an erasure names, as keyed hashes, and how a line or a row is matched against them.

Apart from the register (register.py) so that code without the lake's storage can use it: the Glue job
filters landing lines of erased people with `LandingFilter` and needs pyarrow only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from ..identity import identity_key
from ..zones.landing.validation import FIELDS

# Which landing field names the data subject of a record: an identity (e-mail) or a device serial.
SUBJECT = {
    "customer": ("identity", "email"),
    "accelerometer": ("identity", "user"),
    "step_trainer": ("serial", "serialNumber"),
}


# source -> (kind, position of the subject's field among the record's typed values)
_SUBJECT_INDEX = {
    source: (kind, [k for k, _, _ in FIELDS[source]].index(name)) for source, (kind, name) in SUBJECT.items()
}

IDENTITY_COLUMNS = ("email", "user")  # hold an e-mail: identity key = lower(trim(value))


def subject_columns(columns) -> dict[str, list[str]]:
    """Which columns of a table name the person a row belongs to.

    {"identity": e-mail columns, "key": identity-key columns, "pseudonym": customer_id,
     "serial": serialNumber, but only in device-reading tables: a customer record is its owner's
     by e-mail, whatever serial it shares with someone else}
    """
    present = set(columns)
    return {
        "identity": [c for c in IDENTITY_COLUMNS if c in present],
        "key": ["customer_key"] if "customer_key" in present else [],
        "pseudonym": ["customer_id"] if "customer_id" in present else [],
        "serial": ["serialNumber"] if "serialNumber" in present and not present & set(IDENTITY_COLUMNS) else [],
    }


# A JSON string literal, and an unterminated one running to the end of the text.
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|"((?:[^"\\]|\\.)*)\\?$', re.DOTALL)


def json_strings(text: str) -> Iterator[str]:
    """Every whole JSON string (keys and values) of `text`, parsed if it is JSON, else scanned tolerantly.

    A line that does not parse (truncated, invalid UTF-8 shown as backslash escapes, stray commas)
    still names people by its string literals; a substring never counts.
    """
    try:
        yield from _walk(json.loads(text))
        return
    except (ValueError, RecursionError):
        pass
    for match in _STRING.finditer(text):
        literal = match.group(1) if match.group(1) is not None else match.group(2)
        try:
            yield json.loads(f'"{literal}"')
        except ValueError:  # a broken escape: the literal as written
            yield literal


def _walk(value) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


@dataclass(frozen=True)
class Subjects:
    """People to match, by keyed hashes: identity keys and serials (HMAC under the erasure key) and the
    ML table's pseudonyms of their identity keys (by pseudonym key id). Matching never needs an e-mail."""

    key: bytes
    identities: frozenset[str] = frozenset()
    serials: frozenset[str] = frozenset()
    pseudonyms: dict[str, frozenset[str]] = field(default_factory=dict)
    # value -> digest: landing repeats the same e-mails and serials on thousands of lines
    _digests: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.identities or self.serials)

    def digest(self, value: str) -> str:
        found = self._digests.get(value)
        if found is None:
            if len(self._digests) > 1_000_000:
                self._digests.clear()
            # a lone surrogate (a \ud800 escape in a quarantined line) is no one's text: hashed as its bytes, it
            # matches nobody, since every key recorded was text
            data = value.encode("utf-8", "surrogatepass")
            found = self._digests[value] = hmac.new(self.key, data, hashlib.sha256).hexdigest()
        return found

    def is_identity(self, email: str) -> bool:
        return self.digest(identity_key(email)) in self.identities

    def is_serial(self, serial: str) -> bool:
        return self.digest(serial) in self.serials

    def owns_record(self, source: str, values: tuple) -> bool:
        """Whether a valid landing record (typed values) is theirs: by its e-mail, or a device reading by serial."""
        return self.owns_value(source, values[_SUBJECT_INDEX[source][1]])

    def owns_value(self, source: str, value: str) -> bool:
        """Whether a valid `source` record whose subject field (SUBJECT) holds `value` is theirs."""
        return self.is_identity(value) if SUBJECT[source][0] == "identity" else self.is_serial(value)

    def named_in_raw(self, raw: str | None) -> bool:
        """Whether a raw (quarantined) line names them: a whole JSON string equal to an identity key once
        trimmed and lower-cased, or equal to a serial."""
        if not raw or not self:
            return False
        return any(self.is_identity(s) or self.is_serial(s) for s in json_strings(raw))

    def matchable(self, pseudonym_key_id: str | None) -> bool:
        """Whether rows pseudonymized under that key can be matched (pseudonyms under it are known)."""
        return pseudonym_key_id is None or pseudonym_key_id in self.pseudonyms

    def predicate(self, columns, pseudonym_key_id: str | None = None, raw: bool = True) -> str | None:
        """SQL, true exactly for a row of theirs, over a relation with `columns`; None if no column names a
        person. It reads the tables and functions `bind` defines."""
        subject, terms = subject_columns(columns), []
        terms += [f'pseudonym(identity_key("{c}")) IN (SELECT h FROM erased_identities)' for c in subject["identity"]]
        terms += [f'pseudonym("{c}") IN (SELECT h FROM erased_identities)' for c in subject["key"]]
        key_id = (pseudonym_key_id or "").replace("'", "''")
        terms += [
            f"\"{c}\" IN (SELECT p FROM erased_pseudonyms WHERE key_id = '{key_id}')" for c in subject["pseudonym"]
        ]
        terms += [f'pseudonym("{c}") IN (SELECT h FROM erased_serials)' for c in subject["serial"]]
        if raw and "raw" in set(columns):
            terms.append("names_erased(raw)")
        # NULL (no e-mail, say) is nobody's: coalesce keeps `NOT predicate` from dropping such rows
        return f"coalesce({' OR '.join(terms)}, false)" if terms else None

    def tables(self) -> dict[str, pa.Table]:
        """The hashes and pseudonyms as the Arrow tables `predicate` reads."""
        pairs = sorted((k, p) for k, ps in self.pseudonyms.items() for p in ps)
        return {
            "erased_identities": pa.table({"h": pa.array(sorted(self.identities), pa.string())}),
            "erased_serials": pa.table({"h": pa.array(sorted(self.serials), pa.string())}),
            "erased_pseudonyms": pa.table(
                {
                    "key_id": pa.array([k for k, _ in pairs], pa.string()),
                    "p": pa.array([p for _, p in pairs], pa.string()),
                }
            ),
        }

    def bind(self, con) -> None:
        """Give a DuckDB connection what `predicate` reads: pseudonym() under the erasure key, the hashes
        and pseudonyms as tables, and names_erased(raw)."""
        from ..engines.duckdb_engine import define_pseudonym

        define_pseudonym(con, self.key)
        for name, table in self.tables().items():
            con.register(name, table)
        con.create_function(
            "names_erased", self.named_in_raw, ["VARCHAR"], "BOOLEAN", null_handling="special", side_effects=False
        )


@dataclass(frozen=True)
class LandingFilter:
    """A predicate on a landing line, `(typed values or None, raw bytes=b"")`: True if it belongs to an erased
    person (a valid record of theirs, or an invalid line that names them in a whole JSON string).

    A valid record is judged by one typed field alone, `subject_field`, so a reader can judge the distinct values of
    that column once (`owns`) instead of every row."""

    source: str
    subjects: Subjects

    @property
    def subject_field(self) -> str:
        return SUBJECT[self.source][1]

    def owns(self, value: str) -> bool:
        return self.subjects.owns_value(self.source, value)

    def __call__(self, values: tuple | None, raw: bytes = b"") -> bool:
        if values is not None:
            return self.subjects.owns_record(self.source, values)
        return self.subjects.named_in_raw(raw.decode("utf-8", "backslashreplace"))
