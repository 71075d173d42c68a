"""Who a record belongs to: the contract's identity key and the ML table's keyed pseudonym of it.

The identity key is defined here once for SQL and once for Python, tested against each other: SQL (rules,
checks, erasure) writes identity_key(x), which every DuckDB connection of the project defines as a macro of
IDENTITY_KEY_SQL (engines/duckdb_engine.py) and the Spark translation expands to it (engines/translate.py).
"""

from __future__ import annotations

import hashlib
import hmac

# identity_key(x) in DuckDB's dialect: spaces (U+0020 only, not every Unicode space) trimmed, then lower-cased.
IDENTITY_KEY_SQL = "lower(trim(BOTH ' ' FROM x))"


def identity_key(email: str) -> str:
    """lower(trim(email)) as SQL engines compute it: spaces (U+0020) trimmed, and each character
    lower-cased on its own (simple case mapping). Python's str.lower() maps a word-final Σ to ς and
    İ to two characters, which DuckDB and Spark do not."""
    trimmed = email.strip(" ")
    if trimmed.isascii():  # the common case, and str.lower() is per character there
        return trimmed.lower()
    return "".join(c.lower()[0] for c in trimmed)


def pseudonym(key: bytes, identity: str) -> str:
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()
