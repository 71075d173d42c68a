"""Secret keys (pseudonyms, erasure register): from the environment, or generated for a local lake.

A lake on S3 is shared infrastructure: there a key must be configured, never generated next to the
data it protects. A local lake may keep a generated key in its private area, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets

from ..storage.lake import Lake
from ..storage.stores import LocalStore

log = logging.getLogger(__name__)

# The lake's private area: generated keys and the erasure register. Locally 0700 with 0600 files; on S3
# the bucket policy protects it (see S3Store.make_private).
PRIVATE = "_private"


class MissingKey(RuntimeError):
    """A key is required and not configured; the message says which variable to set."""


def secret_key(lake: Lake, env_var: str, purpose: str, create: bool = True) -> bytes:
    """The key from `env_var`, else a local lake's generated one; `create=False` (readers) never makes one."""
    configured = os.environ.get(env_var)
    if configured:
        return configured.encode()
    if not isinstance(lake.store, LocalStore):
        raise MissingKey(
            f"{env_var} is not set: a lake on {lake.store.uri()} needs a configured {purpose} key "
            "(from your secret store), none is generated there"
        )
    path = f"{PRIVATE}/{env_var.lower().removeprefix('stedi_')}"
    lake.store.make_private(PRIVATE)  # also tightens the area of a lake an older version created 0755
    if not lake.store.exists(path):
        if not create:
            raise MissingKey(f"{env_var} is not set and lake {lake.root} has no generated {purpose} key")
        lake.store.write_private(path, secrets.token_hex(32).encode())
        log.warning(
            "%s is not set: generated %s %s key in %s; keep it private and set %s in shared deployments",
            env_var,
            "an" if purpose[0] in "aeiou" else "a",
            purpose,
            lake.store.uri(path),
            env_var,
        )
    return lake.store.read_bytes(path).strip()


def pseudonym_key(lake: Lake, create: bool = True) -> bytes:
    return secret_key(lake, "STEDI_PSEUDONYM_KEY", "pseudonym", create)


def erasure_key(lake: Lake) -> bytes:
    return secret_key(lake, "STEDI_ERASURE_KEY", "erasure-register")


def key_id(key: bytes) -> str:
    """A fingerprint that tells which pseudonym key built a snapshot, without revealing the key."""
    return hashlib.sha256(b"stedi-key-id:" + key).hexdigest()[:16]
