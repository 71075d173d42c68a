"""Privacy by construction: keys, the erasure register, and erasure across every zone and snapshot."""
