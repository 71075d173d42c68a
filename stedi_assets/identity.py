"""Who a record belongs to: the contract's identity key and the ML table's keyed pseudonym of it."""

from __future__ import annotations

import hashlib
import hmac


def identity_key(email: str) -> str:
    """lower(trim(email)) as SQL engines compute it: spaces (U+0020) trimmed, and each character
    lower-cased on its own (simple case mapping). Python's str.lower() maps a word-final Σ to ς and
    İ to two characters, which DuckDB and Spark do not."""
    return "".join(c.lower()[0] for c in email.strip(" "))


def pseudonym(key: bytes, identity: str) -> str:
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()
