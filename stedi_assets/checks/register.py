"""An independent oracle of who consented, computed in plain Python from customer_landing.

It restates the customer rules of ZONE_RULES.md without any SQL, so that the consent checks do not
merely re-run the queries they audit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from ..identity import identity_key, pseudonym


class Record(NamedTuple):
    """What the register keeps of a customer_landing record (a tuple: a register holds one per customer)."""

    email: str
    serial: str
    since: int | None  # shareWithResearchAsOfDate: None without research consent
    updated: int  # lastUpdateDate
    source_file: str
    source_line: int


class ConsentRegister:
    """Made from customer_landing's FIELDS columns, which `records(fields)` reads. Each policy's part is made the first
    time a check asks for it (a run audits one policy: a rubric run never needs the winners) and then kept as an
    Arrow table; the records are read again for the other part rather than kept. At 1000 x Udacity (956 k
    customer records) Python records took 480 MB for the rest of the run (the register is cached for the run's
    audits), the tables 60 MB."""

    # The customer_landing columns the register reads, in Record's order.
    FIELDS = ("email", "serialNumber", "shareWithResearchAsOfDate", "lastUpdateDate", "source_file", "source_line")

    def __init__(self, records: Callable[[tuple[str, ...]], pa.Table]) -> None:
        self.records = records
        self._winners: pa.Table | None = None
        self._rubric: pa.Table | None = None
        # The strict tables by pseudonym key, made once: a run's consent checks ask for them again and again.
        self._tables: dict[tuple, pa.Table] = {}

    @property
    def winners(self) -> pa.Table:
        """Strict: the winning record of each identity key, consent or not: customer_key, serial, since (null
        without research consent)."""
        if self._winners is None:
            self._winners = _winners(self.records(self.FIELDS))
        return self._winners

    @property
    def rubric(self) -> pa.Table:
        """Rubric: consent_records(email, serial), (e-mail as written, serial) of the records with consent,
        sorted."""
        if self._rubric is None:
            records = self.records(("email", "serialNumber", "shareWithResearchAsOfDate"))
            consented = records.filter(pc.is_valid(records["shareWithResearchAsOfDate"]))
            pairs = pa.table({"email": consented["email"], "serial": consented["serialNumber"]})
            # distinct pairs (a group-by without aggregates), in code-point order as Python sorts strings
            distinct = pairs.group_by(["email", "serial"], use_threads=False).aggregate([])
            self._rubric = distinct.sort_by([("email", "ascending"), ("serial", "ascending")]).cast(pairs.schema)
        return self._rubric

    def consenting(self) -> pa.Table:
        """Strict: the winners with research consent (customer_key, serial, since)."""
        return self.winners.filter(pc.is_valid(self.winners["since"]))

    def consenting_keys(self) -> set[str]:
        """Strict: the identity keys of the winners with research consent."""
        return set(self.consenting()["customer_key"].to_pylist())

    def rubric_emails(self) -> set[str]:
        """Rubric: the e-mails (as written) of the records with research consent."""
        return set(self.rubric["email"].to_pylist())

    def strict_table(self, pseudonym_key: bytes | None = None) -> pa.Table:
        """consent(customer_key, serial, since, customer_id) of consenting customers, for SQL joins."""
        if ("strict", pseudonym_key) not in self._tables:
            rows = self.consenting()
            keys = rows["customer_key"].to_pylist()
            ids = [pseudonym(pseudonym_key, k) for k in keys] if pseudonym_key else [None] * len(keys)
            self._tables["strict", pseudonym_key] = rows.append_column("customer_id", pa.array(ids, pa.string()))
        return self._tables["strict", pseudonym_key]

    def winners_table(self) -> pa.Table:
        """candidates(customer_key, serial) of every winning record, consent or not."""
        return self.winners.select(["customer_key", "serial"])

    def rubric_table(self) -> pa.Table:
        """consent_records(email, serial) of every landing record with research consent."""
        return self.rubric


def _winners(records: pa.Table) -> pa.Table:
    """The winning record of each identity key, read a batch at a time."""
    winners: dict[str, Record] = {}
    files: dict[str, str] = {}  # one string object per file name, not one per record
    for batch in records.to_batches():
        columns = [column.to_pylist() for column in batch.columns]
        columns[4] = [files.setdefault(f, f) for f in columns[4]]
        for r in map(Record._make, zip(*columns, strict=True)):
            key = identity_key(r.email)
            best = winners.get(key)
            if best is None or _precedence(r) > _precedence(best):
                winners[key] = r
    return pa.table(
        {
            "customer_key": pa.array(list(winners), pa.string()),
            "serial": pa.array([r.serial for r in winners.values()], pa.string()),
            "since": pa.array([r.since for r in winners.values()], pa.int64()),
        }
    )


def _precedence(record: Record) -> tuple:
    # Greatest wins: later update; on a tie no consent beats consent; then later file, later line.
    return (record.updated, record.since is None, record.source_file, record.source_line)
