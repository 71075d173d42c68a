"""Privacy checks: consent holds row by row, and the machine-learning table carries no personal data."""

from __future__ import annotations

import re

from ..privacy.register import ErasureRegister
from .audit import Audit, Outcome, failed, passed

# SQL that counts the rows breaking consent, per table and policy, against the oracle's tables:
# consent(customer_key, serial, since, customer_id), consent_records(email, serial).
_STRICT_CUSTOMER = (
    "SELECT count(*) FROM {t} t LEFT JOIN consent c ON identity_key(t.email) = c.customer_key "
    "WHERE c.customer_key IS NULL OR t.shareWithResearchAsOfDate IS DISTINCT FROM c.since"
)
_RUBRIC_CUSTOMER = (
    "SELECT count(*) FROM {t} t WHERE t.shareWithResearchAsOfDate IS NULL "
    "OR t.email NOT IN (SELECT email FROM consent_records)"
)
_RUBRIC_BY_SERIAL = "SELECT count(*) FROM {t} t WHERE t.serialNumber NOT IN (SELECT serial FROM consent_records)"

VIOLATIONS = {
    "strict": {
        "customer_trusted": _STRICT_CUSTOMER,
        "customer_curated": _STRICT_CUSTOMER,
        "accelerometer_trusted": (
            "SELECT count(*) FROM {t} t LEFT JOIN consent c ON identity_key(t.user) = c.customer_key "
            "WHERE c.customer_key IS NULL OR t.timestamp < c.since"
        ),
        "step_trainer_trusted": (
            "SELECT count(*) FROM {t} t LEFT JOIN consent c ON t.customer_key = c.customer_key "
            "WHERE c.customer_key IS NULL OR t.sensorReadingTime < c.since OR t.serialNumber <> c.serial"
        ),
        "machine_learning_curated": (
            "SELECT count(*) FROM {t} t LEFT JOIN consent c ON t.customer_id = c.customer_id "
            "WHERE c.customer_id IS NULL OR t.sensorReadingTime < c.since"
        ),
    },
    "rubric": {
        "customer_trusted": _RUBRIC_CUSTOMER,
        "customer_curated": _RUBRIC_CUSTOMER,
        "accelerometer_trusted": "SELECT count(*) FROM {t} t WHERE t.user NOT IN (SELECT email FROM consent_records)",
        "step_trainer_trusted": _RUBRIC_BY_SERIAL,
        "machine_learning_curated": _RUBRIC_BY_SERIAL,
    },
}


def consent(audit: Audit) -> Outcome:
    """No row of a customer without research consent; in strict, no reading before the consent date."""
    name = audit.spec.name
    register = audit.register
    # only the policy's table: the strict one costs a pseudonym per consenting customer (3 s at 1000 x Udacity)
    oracle = (
        {"consent": register.strict_table(audit.pseudonym_key)}
        if audit.policy == "strict"
        else {"consent_records": register.rubric_table()}
    )
    violations = audit.scalar(VIOLATIONS[audit.policy][name].format(t=name), (name,), **oracle)
    metadata = {
        "rows_violating_consent": int(violations),
        "consenting_customers": (
            register.consenting().num_rows if audit.policy == "strict" else len(register.rubric_emails())
        ),
    }
    return passed(**metadata) if violations == 0 else failed(**metadata)


HEX_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


def personal_columns(policy: str) -> set[str]:
    """Every column the contract tags as personal data (pii); the rubric policy keeps the serial."""
    from ..zones import TABLES

    tagged = {c for t in TABLES for c in t.pii_columns}
    return tagged - ({"serialNumber"} if policy == "rubric" else set())


def no_pii(audit: Audit) -> Outcome:
    """The ML table has no column tagged pii (the rubric keeps the serial), and no value like an e-mail."""
    forbidden = personal_columns(audit.policy)
    described = [column for schema in audit.schema() for column in schema]
    columns = {name for name, _ in described}
    found = sorted(columns & forbidden)
    name = audit.spec.name
    text_columns = sorted({column for column, kind in described if kind == "VARCHAR"})
    emails = sum(
        audit.scalar(f"SELECT count(*) FROM {name} WHERE contains(\"{c}\", '@')", (name,)) for c in text_columns
    )
    bad_ids = 0
    if "customer_id" in columns:
        ids = [row[0] for row in audit.query(f"SELECT DISTINCT customer_id FROM {name}", (name,))]
        bad_ids = sum(1 for i in ids if i is None or not HEX_PSEUDONYM.match(i))
    metadata = {"personal_columns": found, "values_like_email": int(emails), "malformed_customer_ids": bad_ids}
    return passed(**metadata) if not found and not emails and not bad_ids else failed(**metadata)


def erasure(audit: Audit) -> Outcome:
    """No row of an erased person (or of one being erased): no identity key or serial whose keyed hash is
    in the register, no ML pseudonym the register recorded for them, no quarantined line naming them.

    The register keeps only keyed hashes, so the check hashes what the table holds and compares; raw lines
    are matched as `forget` matches them (whole JSON strings, never substrings). Pseudonyms made under a
    key the register has none for cannot be compared: the consent check ties each one to a landing
    customer, and landing drops erased people.
    """
    register = ErasureRegister.load(audit.lake)
    if not register:
        return passed(erased_people=0)
    subjects = register.subjects()
    key_id = audit.extra.get("pseudonym_key_id")
    name = audit.spec.name
    found = 0
    for part in audit.spec.parts:
        relation = name if part == "data" else f"{name}_rejected"
        columns = [column for column, _ in audit.schema(part)[0]]
        predicate = subjects.predicate(columns, key_id, raw=False)
        if predicate is not None:
            found += audit.scalar(
                f"SELECT count(*) FROM {relation} WHERE {predicate}",
                (relation,),
                keyed_hash=register.key,
                **subjects.tables(),
            )
        if "raw" in columns:
            raws = audit.query(f"SELECT raw FROM {relation} WHERE raw <> ''", (relation,))
            found += sum(1 for (raw,) in raws if subjects.named_in_raw(raw))
    metadata = {
        "erased_people": len(register.identities),
        "pending_erasures": len(register.pending()),
        "rows_of_erased_people": int(found),
    }
    return passed(**metadata) if found == 0 else failed(**metadata)
