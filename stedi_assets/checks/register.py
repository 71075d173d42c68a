"""An independent oracle of who consented, computed in plain Python from customer_landing.

It restates the customer rules of ZONE_RULES.md without any SQL, so that the consent checks do not
merely re-run the queries they audit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa

from ..identity import identity_key, pseudonym


class Record(NamedTuple):
    """What the register keeps of a customer_landing record (a tuple: a register holds one per customer)."""

    email: str
    serial: str
    since: int | None  # shareWithResearchAsOfDate: None without research consent
    updated: int  # lastUpdateDate
    source_file: str
    source_line: int


@dataclass(frozen=True)
class ConsentRegister:
    winners: dict[str, Record]  # strict: identity key -> winning record (any consent)
    rubric_pairs: frozenset[tuple[str, str]]  # rubric: (e-mail as written, serial) of records with consent
    # The tables below, made once: a run's consent checks ask for them again and again (sorting the rubric
    # pairs alone took 0.1 s per check at 100 x Udacity).
    _tables: dict[tuple, pa.Table] = field(default_factory=dict, compare=False, repr=False)

    # The customer_landing columns the register reads, in Record's order.
    FIELDS = ("email", "serialNumber", "shareWithResearchAsOfDate", "lastUpdateDate", "source_file", "source_line")

    @property
    def rubric_emails(self) -> frozenset[str]:
        return frozenset(email for email, _ in self.rubric_pairs)

    @classmethod
    def from_table(cls, table: pa.Table) -> ConsentRegister:
        """The register of customer_landing's FIELDS columns, read a batch at a time."""
        winners: dict[str, Record] = {}
        pairs: set[tuple[str, str]] = set()
        files: dict[str, str] = {}  # one string object per file name, not one per record
        for batch in table.select(list(cls.FIELDS)).to_batches():
            columns = [column.to_pylist() for column in batch.columns]
            columns[4] = [files.setdefault(f, f) for f in columns[4]]
            for r in map(Record._make, zip(*columns, strict=True)):
                key = identity_key(r.email)
                best = winners.get(key)
                if best is None or _precedence(r) > _precedence(best):
                    winners[key] = r
                if r.since is not None:
                    pairs.add((r.email, r.serial))
        return cls(winners=winners, rubric_pairs=frozenset(pairs))

    def consenting(self) -> dict[str, Record]:
        """Strict: identity key -> winning record, for winners with research consent."""
        return {k: r for k, r in self.winners.items() if r.since is not None}

    def strict_table(self, pseudonym_key: bytes | None = None) -> pa.Table:
        """consent(customer_key, serial, since, customer_id) of consenting customers, for SQL joins."""
        if ("strict", pseudonym_key) in self._tables:
            return self._tables["strict", pseudonym_key]
        rows = self.consenting()
        table = self._tables["strict", pseudonym_key] = pa.table(
            {
                "customer_key": list(rows),
                "serial": [r.serial for r in rows.values()],
                "since": pa.array([r.since for r in rows.values()], pa.int64()),
                "customer_id": [pseudonym(pseudonym_key, k) if pseudonym_key else None for k in rows],
            }
        )
        return table

    def winners_table(self) -> pa.Table:
        """candidates(customer_key, serial) of every winning record, consent or not."""
        return pa.table({"customer_key": list(self.winners), "serial": [r.serial for r in self.winners.values()]})

    def rubric_table(self) -> pa.Table:
        """consent_records(email, serial) of every landing record with research consent."""
        if ("rubric",) not in self._tables:
            pairs = sorted(self.rubric_pairs)
            self._tables["rubric",] = pa.table({"email": [p[0] for p in pairs], "serial": [p[1] for p in pairs]})
        return self._tables["rubric",]


def _precedence(record: Record) -> tuple:
    # Greatest wins: later update; on a tie no consent beats consent; then later file, later line.
    return (record.updated, record.since is None, record.source_file, record.source_line)
