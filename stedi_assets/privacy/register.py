"""The erasure register: keyed hashes of the identity keys and device serials of erased people.

It never holds an e-mail or a serial, only HMAC-SHA256 under the erasure key, so it can be kept
forever to drop data re-delivered for an erased person at landing.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from ..identity import identity_key
from ..storage.lake import Lake
from ..zones.landing.validation import FIELDS
from .keys import erasure_key

REGISTER = "_private/erasure_register.json"

# Which landing field names the data subject of a record: an identity (e-mail) or a device serial.
SUBJECT = {"customer": ("identity", "email"), "accelerometer": ("identity", "user"),
           "step_trainer": ("serial", "serialNumber")}


IDENTITY_COLUMNS = ("email", "user")     # hold an e-mail: identity key = lower(trim(value))


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


@dataclass
class ErasureRegister:
    key: bytes
    identities: set[str] = field(default_factory=set)
    serials: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, lake: Lake, for_update: bool = False) -> "ErasureRegister":
        if not lake.store.exists(REGISTER):
            # Nobody erased yet: no key is needed (or generated) until someone is.
            return cls(key=erasure_key(lake) if for_update else b"")
        data = json.loads(lake.store.read_bytes(REGISTER))
        return cls(key=erasure_key(lake), identities=set(data["identities"]), serials=set(data["serials"]))

    def save(self, lake: Lake) -> None:
        lake.store.write_atomic(REGISTER, json.dumps(
            {"version": 1, "identities": sorted(self.identities), "serials": sorted(self.serials)}, indent=1).encode())

    def __bool__(self) -> bool:
        return bool(self.identities or self.serials)

    def digest(self, value: str) -> str:
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()

    def add(self, identity: str, serials: set[str]) -> None:
        self.identities.add(self.digest(identity_key(identity)))
        self.serials |= {self.digest(s) for s in serials}

    def erased(self, kind: str, value: str) -> bool:
        if kind == "identity":
            return self.digest(identity_key(value)) in self.identities
        return self.digest(value) in self.serials

    def landing_filter(self, source: str):
        """A predicate on a landing record's typed values: True if it belongs to an erased person."""
        if not self:
            return None
        kind, name = SUBJECT[source]
        index = [key for key, _, _ in FIELDS[source]].index(name)
        return lambda values: self.erased(kind, values[index])
