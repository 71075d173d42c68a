"""The erasure register: who was erased, as keyed hashes only, and which erasures are still unfinished.

It never holds an e-mail or a serial: identity keys and device serials are kept as HMAC-SHA256 under
the erasure key, and the ML table's pseudonyms of the person (`customer_id`, HMAC under the pseudonym
key, by key id) as they are. That is all an erasure needs to finish (a killed `stedi forget` is
finished by the next `forget` or `run` from the register alone) and all landing needs to drop data
re-delivered for an erased person, forever.

An erasure is recorded as pending before anything is deleted and marked done only when every table and
the landing files are clean. People in a pending erasure are already dropped at landing.

Each erasure is a file of its own (`_private/erasures/<id>.json`), written only by the command that records,
advances or finishes it. Two commands at once therefore never undo each other's erasures: the register used
to be one file that every command rewrote whole from the copy it had loaded, so of two `forget`s at once the
second dropped the first one's erasure (there was no compare-and-set). That file, of versions 1 and 2, is
still read and never written again: an erasure of it that a later command finishes gets its own file, which
wins.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..storage.lake import Lake
from .keys import PRIVATE, erasure_key
from .subjects import LandingFilter, Subjects  # matching (apart, for code without the lake: the Glue job)

REGISTER = f"{PRIVATE}/erasures"  # one <id>.json per erasure
LEGACY_REGISTER = f"{PRIVATE}/erasure_register.json"  # versions 1 and 2: every erasure in one file
PENDING, DONE = "pending", "done"


@dataclass
class Erasure:
    """One `stedi forget`: whom it erases (hashes only), whether it is finished, and its landing progress."""

    id: str
    state: str
    identities: list[str]
    serials: list[str]
    pseudonyms: dict[str, list[str]]  # pseudonym key id -> customer_id values
    requested_at: str
    finished_at: str | None = None
    # landing root -> {file: size after its rewrite}: the landing snapshots' records get these sizes
    landing_sizes: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    def subjects(self, key: bytes) -> Subjects:
        return Subjects(
            key,
            frozenset(self.identities),
            frozenset(self.serials),
            {k: frozenset(v) for k, v in self.pseudonyms.items()},
        )

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ErasureRegister:
    key: bytes
    erasures: list[Erasure] = field(default_factory=list)
    # hashes of people erased before the register kept erasures one by one (version 1)
    legacy_identities: set[str] = field(default_factory=set)
    legacy_serials: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, lake: Lake, for_update: bool = False) -> ErasureRegister:
        store = lake.store
        files = [p for p in store.list_files(REGISTER) if _is_erasure_file(p)]
        legacy = store.exists(LEGACY_REGISTER)
        if not files and not legacy:
            # Nobody erased yet: no key is needed (or generated) until someone is.
            return cls(key=erasure_key(lake) if for_update else b"")
        data = json.loads(store.read_bytes(LEGACY_REGISTER)) if legacy else {}
        erasures = {e["id"]: Erasure(**e) for e in data.get("erasures", [])}
        for path in files:  # an erasure's own file is newer than the legacy file's copy of it
            erasure = Erasure(**json.loads(store.read_bytes(path)))
            erasures[erasure.id] = erasure
        ordered = sorted(erasures.values(), key=lambda e: (e.requested_at, e.id))
        recorded = {h for e in ordered for h in e.identities}, {h for e in ordered for h in e.serials}
        return cls(
            key=erasure_key(lake),
            erasures=ordered,
            legacy_identities=set(data.get("identities", [])) - recorded[0],
            legacy_serials=set(data.get("serials", [])) - recorded[1],
        )

    def save(self, lake: Lake, erasure: Erasure) -> None:
        """Write `erasure`'s file, and only it: what this command changed (see the module's docstring)."""
        lake.store.make_private(PRIVATE)  # 0700 before a folder is made in it
        lake.store.write_private(f"{REGISTER}/{erasure.id}.json", json.dumps(erasure.to_json(), indent=1).encode())

    @property
    def identities(self) -> set[str]:
        return self.legacy_identities | {h for e in self.erasures for h in e.identities}

    @property
    def serials(self) -> set[str]:
        return self.legacy_serials | {h for e in self.erasures for h in e.serials}

    def __bool__(self) -> bool:
        return bool(self.identities or self.serials)

    def pending(self) -> list[Erasure]:
        return [e for e in self.erasures if e.pending]

    def subjects(self) -> Subjects:
        """Everyone erased or being erased."""
        pseudonyms: dict[str, set[str]] = {}
        for e in self.erasures:
            for key_id, values in e.pseudonyms.items():
                pseudonyms.setdefault(key_id, set()).update(values)
        return Subjects(
            self.key,
            frozenset(self.identities),
            frozenset(self.serials),
            {k: frozenset(v) for k, v in pseudonyms.items()},
        )

    def record(self, identity_keys: set[str], serials: set[str], pseudonyms: dict[str, list[str]]) -> Erasure:
        """Add a pending erasure of these people (identity keys and serials are hashed here)."""
        digest = Subjects(self.key).digest
        erasure = Erasure(
            id=uuid.uuid4().hex[:12],
            state=PENDING,
            identities=sorted({digest(k) for k in identity_keys}),
            serials=sorted({digest(s) for s in serials}),
            pseudonyms={k: sorted(v) for k, v in pseudonyms.items()},
            requested_at=_now(),
        )
        self.erasures.append(erasure)
        return erasure

    def finish(self, erasure_id: str) -> None:
        for e in self.erasures:
            if e.id == erasure_id:
                e.state, e.finished_at = DONE, _now()

    def landing_filter(self, source: str) -> LandingFilter | None:
        """Which landing lines of `source` belong to an erased person (None when nobody is erased)."""
        return LandingFilter(source, self.subjects()) if self else None


def _is_erasure_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return path.startswith(f"{REGISTER}/") and name.endswith(".json") and not name.startswith(".")  # no temp file


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
