"""What the `stedi` commands share: exit codes, one-line errors, and where the lake and landing are."""

from __future__ import annotations

import os

from .. import settings
from ..storage.lake import Lake
from ..storage.lake import open_lake as open_iceberg_lake
from ..storage.stores import is_s3

EXIT_CHECKS_FAILED, EXIT_USAGE = 1, 2


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def lake_root(args) -> str:
    root = getattr(args, "lake", None) or settings.lake_uri()
    if not is_s3(root) and os.path.exists(root) and not os.path.isdir(root):
        raise CliError(f"lake {root} is not a folder")
    return root


def landing_root(args, must_exist: bool = True) -> str:
    root = getattr(args, "landing", None) or settings.landing_uri()
    if must_exist and not is_s3(root) and not os.path.isdir(root):
        raise CliError(f"landing folder {root} does not exist")
    return root


def open_lake(args, must_have_tables: bool = True, convertible: bool = False) -> Lake:
    """The lake named by --lake / STEDI_LAKE; a lake in the pre-Iceberg format is refused in one line."""
    root = lake_root(args)
    lake = open_iceberg_lake(root)
    require_tables(root, lake, lake.has_tables(), must_have_tables, convertible)
    return lake


def require_tables(
    root: str, lake: Lake, has_tables: bool, must_have_tables: bool = True, convertible: bool = False
) -> None:
    """Refuse, in one line, a lake with no committed table (and say so if it is in the previous format)."""
    if has_tables:
        return
    if not convertible:
        from ..storage.legacy import legacy_tables

        if legacy_tables(lake.store):
            raise CliError(
                f"lake {root} is in the previous snapshot format: convert it with `stedi migrate --lake {root}`"
            )
    if must_have_tables:
        raise CliError(f"lake {root} has no committed tables: run `stedi run` first")


def table_name(text: str) -> tuple[str, str]:
    """'trusted.customer_trusted' or 'customer_trusted' -> (zone, table)."""
    from ..zones import table

    spec = table(text.split(".", 1)[-1])
    if "." in text and text.split(".", 1)[0] != spec.zone:
        raise CliError(f"{text}: table {spec.name} is in zone {spec.zone}")
    return spec.zone, spec.name
