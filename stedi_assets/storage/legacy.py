"""The lake format before Iceberg (snapshot folders behind a `_current.json` pointer): detected so that
commands refuse it in one line, and converted by `stedi migrate`."""

from __future__ import annotations

LEGACY_POINTER = "_current.json"


def legacy_tables(store) -> list[tuple[str, str]]:
    """(zone, table) of every table of the contract that the old format published in this store."""
    from ..zones import TABLES

    return [(t.zone, t.name) for t in TABLES if store.exists(f"{t.zone}/{t.name}/{LEGACY_POINTER}")]


def migrate(lake) -> dict[str, int]:
    """Commit every old-format table's current snapshot as its Iceberg table's first snapshot, in graph order.

    The data files stay where they are (Iceberg references files by path); the old bookkeeping (pointer,
    manifests, lock) and every snapshot folder but the converted one are deleted. Resumable: a table the
    catalog already has is not committed again. Returns rows per converted table.
    """
    import json
    import uuid

    from ..zones import graph_order
    from .lake import StagedWrite
    from .runs import close_run

    store, legacy = lake.store, set(legacy_tables(lake.store))
    run_id = f"migrate-{uuid.uuid4()}"
    new_ids: dict[tuple[str, str], str] = {}  # (table, old snapshot id) -> its Iceberg snapshot id
    converted: dict[str, int] = {}
    for spec in graph_order():
        if (spec.zone, spec.name) not in legacy:
            continue
        folder = f"{spec.zone}/{spec.name}"
        old = json.loads(store.read_bytes(f"{folder}/{LEGACY_POINTER}"))
        if lake.has_current(spec.zone, spec.name):
            new_ids[(spec.name, old["snapshot"])] = lake.current(spec.zone, spec.name).snapshot
        else:
            policy = old.get("policy") or "strict"
            staged = StagedWrite(
                zone=spec.zone,
                table=spec.name,
                token="migrated",
                schemas={part: spec.arrow_schema(policy, part) for part in spec.parts},
                base={part: None for part in spec.parts},
                files=old["files"],
                rows=old.get("rows", {}),
                policy=old.get("policy"),
                extra=old.get("extra", {}),
                inputs={n: new_ids[(n, s)] for n, s in old.get("inputs", {}).items() if (n, s) in new_ids},
            )
            snap = lake.commit(staged, run_id, old.get("extra", {}).get("engine"), set(spec.pii_columns))
            new_ids[(spec.name, old["snapshot"])] = snap.snapshot
            converted[spec.qualified_name] = snap.rows.get("data", 0)
        for snapshot in store.list_dirs(f"{folder}/snapshots"):
            if snapshot != old["snapshot"]:
                store.delete_tree(f"{folder}/snapshots/{snapshot}")
        for leftover in (
            f"{folder}/snapshots/{old['snapshot']}/_manifest.json",
            f"{folder}/_lock.json",
            f"{folder}/{LEGACY_POINTER}",
        ):
            store.delete_tree(leftover)
    close_run(lake, run_id, {name for (name, _) in new_ids})
    return converted
