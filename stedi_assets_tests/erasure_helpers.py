"""Looking for a person in every byte of a lake, a landing tree or a DAGSTER_HOME, as an auditor would.

Compressed files are opened first: gzip landing files, Iceberg's Avro manifests (deflate blocks),
Parquet data files (cell by cell, besides their raw bytes, which hold the footer statistics) and SQLite
databases (Dagster's run and event storage: every cell, zlib-compressed snapshot bodies decompressed).
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import zlib
from pathlib import Path

import duckdb

AVRO_MAGIC = b"Obj\x01"
SQLITE_MAGIC = b"SQLite format 3\x00"


def _avro_long(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos


def avro_contents(data: bytes) -> bytes:
    """The header and every block of an Avro container file, decompressed (null or deflate codec)."""
    pos, codec, header_end = len(AVRO_MAGIC), b"null", 0
    while True:  # the metadata map, in blocks
        count, pos = _avro_long(data, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _avro_long(data, pos)
        for _ in range(count):
            size, pos = _avro_long(data, pos)
            key = data[pos : pos + size]
            pos += size
            size, pos = _avro_long(data, pos)
            if key == b"avro.codec":
                codec = data[pos : pos + size]
            pos += size
    header_end = pos + 16  # the sync marker
    out, pos = [data[:header_end]], header_end
    while pos < len(data):
        _, pos = _avro_long(data, pos)  # objects in the block
        size, pos = _avro_long(data, pos)
        block = data[pos : pos + size]
        pos += size + 16
        out.append(zlib.decompress(block, -15) if codec == b"deflate" else block)
    return b"".join(out)


def _cell_bytes(value) -> bytes:
    if isinstance(value, bytes):
        try:
            return zlib.decompress(value)  # Dagster stores job and plan snapshots zlib-compressed
        except zlib.error:
            return value
    return str(value).encode()


def sqlite_contents(path: Path) -> bytes:
    """Every cell of every table of a SQLite database, read through SQLite (pages, WAL and all)."""
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        cells = [_cell_bytes(v) for t in tables for row in con.execute(f'SELECT * FROM "{t}"') for v in row]
    return b"\n".join(cells)


def readable_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data.startswith(SQLITE_MAGIC):
        return data + sqlite_contents(path)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if data.startswith(AVRO_MAGIC):
        return avro_contents(data)
    if path.suffix == ".parquet":
        with duckdb.connect() as con:
            cells = con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
        return data + "\n".join(" ".join(map(str, row)) for row in cells).encode()
    return data


# Iceberg truncates string bounds in manifests to 16 characters: a prefix that long is a trace too.
BOUND_LENGTH = 16


def files_naming(root: Path, needles: list[str], whole: bool = False) -> list[str]:
    """Every file under `root` that holds one of `needles` (case-insensitive), opened as above; in an
    Avro manifest, the 16-character prefix a truncated column bound would keep counts as well. `whole`:
    only where no e-mail or serial character touches it (case@p.com is not in showcase@p.com)."""
    edge = (rb"(?<![\w.+-])", rb"(?![\w.+-])") if whole else (b"", b"")
    patterns = [re.compile(edge[0] + re.escape(n.lower().encode()) + edge[1]) for n in needles]
    prefixes = [re.compile(edge[0] + re.escape(n.lower().encode()[:BOUND_LENGTH])) for n in needles]
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        text = readable_bytes(path).lower()
        if any(p.search(text) for p in [*patterns, *(prefixes if path.suffix == ".avro" else [])]):
            hits.append(str(path))
    return hits


def json_strings(text: str) -> list[str]:
    """The string literals of a JSON line (an independent restatement of the rule, for the oracle)."""
    try:
        found, stack = [], [json.loads(text)]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict):
                stack += [*item.keys(), *item.values()]
            elif isinstance(item, list):
                stack += item
        return found
    except ValueError:
        return [m.group(1) for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text)]


def belongs_to(row: dict, key: str, serials: set[str]) -> bool:
    """The contract's rule: a row is the person's by identity key, by serial in a device-reading table,
    or, for a quarantined line, by a whole JSON string equal to the key or a serial."""
    identity = [row[c] for c in ("email", "user") if c in row]
    if any(v is not None and v.strip(" ").lower() == key for v in identity):
        return True
    if row.get("customer_key") == key:
        return True
    if not identity and row.get("serialNumber") in serials:
        return True
    raw = row.get("raw") or ""
    return any(s.strip(" ").lower() == key or s in serials for s in json_strings(raw)) if raw else False
