"""An independent oracle of who consented, computed in plain Python from customer_landing.

It restates the customer rules of ZONE_RULES.md without any SQL, so that the consent checks do not
merely re-run the queries they audit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..identity import identity_key, pseudonym


@dataclass(frozen=True)
class ConsentRegister:
    winners: dict[str, dict]  # strict: identity key -> winning record (any consent)
    rubric_pairs: frozenset[tuple[str, str]]  # rubric: (e-mail as written, serial) of records with consent

    # The customer_landing columns the register reads: who, which device, consent, and precedence.
    FIELDS = ("email", "serialNumber", "shareWithResearchAsOfDate", "lastUpdateDate", "source_file", "source_line")

    @property
    def rubric_emails(self) -> frozenset[str]:
        return frozenset(email for email, _ in self.rubric_pairs)

    @classmethod
    def from_table(cls, records: list[dict]) -> ConsentRegister:
        winners: dict[str, dict] = {}
        for r in records:
            key = identity_key(r["email"])
            best = winners.get(key)
            if best is None or _precedence(r) > _precedence(best):
                winners[key] = r
        return cls(
            winners=winners,
            rubric_pairs=frozenset(
                (r["email"], r["serialNumber"]) for r in records if r["shareWithResearchAsOfDate"] is not None
            ),
        )

    def consenting(self) -> dict[str, dict]:
        """Strict: identity key -> winning record, for winners with research consent."""
        return {k: r for k, r in self.winners.items() if r["shareWithResearchAsOfDate"] is not None}

    def strict_table(self, pseudonym_key: bytes | None = None) -> pa.Table:
        """consent(customer_key, serial, since, customer_id) of consenting customers, for SQL joins."""
        rows = self.consenting()
        return pa.table(
            {
                "customer_key": list(rows),
                "serial": [r["serialNumber"] for r in rows.values()],
                "since": pa.array([r["shareWithResearchAsOfDate"] for r in rows.values()], pa.int64()),
                "customer_id": [pseudonym(pseudonym_key, k) if pseudonym_key else None for k in rows],
            }
        )

    def winners_table(self) -> pa.Table:
        """candidates(customer_key, serial) of every winning record, consent or not."""
        return pa.table(
            {"customer_key": list(self.winners), "serial": [r["serialNumber"] for r in self.winners.values()]}
        )

    def rubric_table(self) -> pa.Table:
        """consent_records(email, serial) of every landing record with research consent."""
        pairs = sorted(self.rubric_pairs)
        return pa.table({"email": [p[0] for p in pairs], "serial": [p[1] for p in pairs]})


def _precedence(record: dict) -> tuple:
    # Greatest wins: later update; on a tie no consent beats consent; then later file, later line.
    return (
        record["lastUpdateDate"],
        record["shareWithResearchAsOfDate"] is None,
        record["source_file"],
        record["source_line"],
    )
