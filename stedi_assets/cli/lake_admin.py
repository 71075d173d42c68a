"""`stedi init`, `land`, `ddl`, `snapshots`, `rollback`, `migrate`, `forget`, `audit`, `report`: the lake itself,
without Dagster (`stedi query` is in query.py)."""

from __future__ import annotations

import os
import sys

from ..contract import ZONES
from ..storage.stores import file_sha256, open_store
from ..zones.landing.reader import landing_files
from ..zones.landing.schema import SOURCE_OF
from .common import CliError, lake_root, landing_root, open_lake, table_name


def lake_view(lake, as_of: str | None):
    """(run id or None, table -> snapshot) of the lake a reader asked for: by default the latest complete run's."""
    from ..storage.runs import default_view, resolve_run, view_of_run

    if as_of == "current":
        return None, {t: lake.current(z, t) for z, t in lake.tables()}
    if as_of:
        run = resolve_run(lake, as_of)
        return run, view_of_run(lake, run)
    return default_view(lake)


def init(args) -> int:
    lake, landing = open_store(lake_root(args)), open_store(landing_root(args, must_exist=False))
    for store in (lake, landing):
        if store.ensure_root():
            print(f"created {store.uri()}")
    for zone in ZONES:
        lake.mark_folder(zone)
    for source in SOURCE_OF.values():
        landing.mark_folder(source)
    print(f"lake {lake.uri()}: {', '.join(z + '/' for z in ZONES)}")
    print(f"landing {landing.uri()}: {', '.join(s + '/' for s in SOURCE_OF.values())}")
    return 0


def land(args) -> int:
    """Upload every landing file of LOCAL_DIR to the same relative path under the landing root."""
    source, target = open_store(args.local_dir), open_store(landing_root(args, must_exist=False))
    if not source.is_dir():
        raise CliError(f"folder {args.local_dir} does not exist")
    files = [p for s in SOURCE_OF.values() for p in landing_files(source, s).files]  # regular files only
    if not files:
        raise CliError(f"{args.local_dir} has no landing files under {', '.join(SOURCE_OF.values())}")
    uploaded = 0
    for rel in files:
        digest = file_sha256(source.uri(rel))
        if target.checksum(rel) == digest:
            continue
        target.put_file(source.uri(rel), rel, checksum=digest)
        uploaded += 1
    print(f"{uploaded} uploaded, {len(files) - uploaded} already there, to {target.uri()}")
    return 0


def ddl(args) -> int:
    """The Athena DDL of the raw landing JSON tables; every lake table is an Iceberg table in the catalog."""
    from ..catalog.ddl import database, render, statements

    values = {
        "landing": open_store(landing_root(args, must_exist=False)).uri(),
        "raw_database": database("raw", args.database_prefix),
    }
    print("\n".join(f"-- {name}\n{render(text, values)}" for name, text in statements().items()))
    return 0


def snapshots(args) -> int:
    from ..report import print_table

    lake = open_lake(args)
    zone, table = table_name(args.table)
    current = lake.current(zone, table).snapshot
    tags: dict[str, list[str]] = {}
    for tag, snapshot_id in lake.tags(zone, table).items():
        tags.setdefault(snapshot_id, []).append(tag)
    print_table(
        ("snapshot", "created", "rows", "policy", "run", "tags", "current"),
        [
            (
                s.snapshot,
                s.created_at,
                f"{s.rows.get('data', 0):,}",
                s.policy or "",
                (s.run_id or "")[:8],
                " ".join(sorted(tags.get(s.snapshot, []))),
                "current" if s.snapshot == current else "",
            )
            for s in lake.snapshots(zone, table)
        ],
    )
    return 0


def rollback(args) -> int:
    lake = open_lake(args)
    if args.run:
        from ..storage.runs import resolve_run, view_of_run

        run = resolve_run(lake, args.run)
        for name, snap in view_of_run(lake, run).items():
            lake.rollback(snap.zone, name, snap.snapshot)
        print(f"every table now at the snapshot of run {run}")
    else:
        if not args.table:
            raise CliError("name a table (and optionally a snapshot id), or --run RUN for the whole lake")
        zone, table = table_name(args.table)
        target = lake.rollback(zone, table, args.snapshot)
        print(f"{zone}.{table} now at snapshot {target.snapshot} ({target.rows.get('data', 0):,} rows)")
    mixed = _policies_if_mixed(lake)
    if mixed:
        print(
            f"stedi: warning: the current tables mix policies ({mixed}); a run refuses inputs built with "
            "another policy: roll the others back too, or run again with one --policy",
            file=sys.stderr,
        )
    return 0


def _policies_if_mixed(lake) -> str:
    """'rubric: t1; strict: t2, t3' when the current snapshots were built with different policies, else ''."""
    tables: dict[str, list[str]] = {}
    for zone, name in lake.tables():
        policy = lake.current(zone, name).policy  # landing tables have none: they serve both
        if policy:
            tables.setdefault(policy, []).append(name)
    if len(tables) < 2:
        return ""
    return "; ".join(f"{policy}: {', '.join(names)}" for policy, names in sorted(tables.items()))


def migrate(args) -> int:
    from ..storage.legacy import legacy_tables
    from ..storage.legacy import migrate as convert

    lake = open_lake(args, must_have_tables=False, convertible=True)
    if not legacy_tables(lake.store):
        print(f"lake {lake.root} has no table in the previous format: nothing to migrate")
        return 0
    for table, rows in convert(lake).items():
        print(f"{table:34} {rows:>10,} rows now an Iceberg table")
    print(f"lake {lake.root} converted ({lake.choice.describe()})")
    return 0


def forget(args) -> int:
    """Erase people everywhere: landing files, every table and snapshot; remember them as keyed hashes.
    Erasures left pending (a killed `forget`) are finished first; with no e-mail, only that is done."""
    from ..privacy.forget import finish_pending
    from ..privacy.forget import forget as erase

    emails = _emails_to_forget(args)
    lake = open_lake(args, must_have_tables=False)
    landing = open_store(landing_root(args))
    try:
        if args.dry_run:
            if not emails:
                raise CliError("--dry-run needs the e-mails to look for")
            _print_survey(erase(lake, landing, emails, dry_run=True))
            return 0
        finished = finish_pending(lake, landing)
        for report in finished:
            _print_erasure("finished a pending erasure:", report)
        if not emails:
            if not finished:
                raise CliError("name at least one e-mail, or --file with one e-mail per line (no erasure is pending)")
            return 0
        _print_erasure("erased", erase(lake, landing, emails))
    except (ValueError, RuntimeError) as err:
        raise CliError(str(err)) from None
    return 0


def _emails_to_forget(args) -> list[str]:
    """The e-mails to erase; an argument that is not one is refused without being echoed (it may be a
    name or a phone number: personal data never reaches a terminal log)."""
    from ..privacy.forget import is_email

    emails = []
    for number, text in enumerate(args.emails, 1):
        if not is_email(text):
            raise CliError(f"argument {number} is not an e-mail address: name each person by e-mail (user@domain)")
        emails.append(text)
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise CliError(f"--file {args.file}: cannot be read ({type(err).__name__})") from None
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not is_email(line.strip()):
                raise CliError(f"line {number} of --file is not an e-mail address (one e-mail per line)")
            emails.append(line.strip())
        if not emails:
            raise CliError(f"--file {args.file} names no e-mail")
    return emails


def _print_erasure(verb: str, report) -> None:
    """Counts only: no e-mail, serial or line ever reaches the terminal."""
    print(
        f"{verb} {report.people} people ({report.serials} device serials): {report.landing_lines_removed} "
        f"landing lines removed from {report.landing_files_rewritten} files; {report.files_deleted} lake files "
        "deleted"
    )
    for table in sorted({*report.rows_removed, *report.snapshots_expired}):
        print(
            f"  {table:42} {report.rows_removed.get(table, 0):>8,} rows removed, "
            f"{report.snapshots_expired.get(table, 0):>3} older snapshots expired"
        )
    for dropped in report.snapshots_dropped:
        print(f"  {dropped}: dropped (built with an older pseudonym key)")


def _print_survey(survey) -> None:
    print(f"dry run: would erase {survey.people} people ({survey.serials} device serials); nothing was changed")
    if survey.pending:
        print(f"  ({survey.pending} erasure(s) pending: `stedi forget` or `stedi run` finishes them first)")
    for path, lines in sorted(survey.landing_lines.items()):
        print(f"  landing file {path:54} {lines:>8,} lines")
    for table in survey.rows:
        print(
            f"  {table:42} {survey.rows[table]:>8,} rows in the current snapshot, "
            f"{survey.older_snapshots[table]:>3} older snapshots to expire"
        )


def report(args) -> int:
    """Write the HTML report of the lake readers see (or --as-of); print where, and the checks' tally."""
    from ..html_report import gather, write_page
    from ..html_report.facts import STATUSES, tally

    lake = open_lake(args)
    run_id, view = lake_view(lake, args.as_of)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CliError(f"--out {args.out} is a file, not a folder")
    facts = gather(lake, run_id, view)
    try:
        path = write_page(facts, args.out)
    except OSError as err:
        raise CliError(f"--out {args.out}: cannot write the report ({err.strerror or type(err).__name__})") from None
    counted = ", ".join(f"{n} {STATUSES[status]}" for status, n in tally(facts.checks).items())
    print(f"report of {facts.views[0].label} written to {path} ({len(facts.checks)} checks: {counted})")
    return 0


def audit(args) -> int:
    from ..privacy.report import COLUMNS, audit_rows
    from ..report import print_table

    print_table(COLUMNS, audit_rows(open_lake(args)))
    return 0
