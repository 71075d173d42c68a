"""How the lakehouse is run: a job per zone, one for everything, one for the checks alone,
a daily schedule, and a sensor that starts a run when new landing files appear."""

import hashlib

import dagster as dg

from .assets import TABLE_ASSETS
from .resources import LandingResource
from .storage.stores import StoreError, open_store
from .zones.landing.reader import landing_files
from .zones.landing.schema import SOURCE_OF

zone_jobs = [
    dg.define_asset_job(
        f"{zone}_job",
        selection=dg.AssetSelection.groups(zone),
        description=f"Materialize the {zone} zone (its upstream must be published).",
    )
    for zone in ("landing", "trusted", "curated")
]
lakehouse_job = dg.define_asset_job(
    "lakehouse_job",
    selection=dg.AssetSelection.all(),
    description="Materialize every table, landing to curated, with its checks.",
)
checks_job = dg.define_asset_job(
    "checks_job",
    selection=dg.AssetSelection.checks_for_assets(*TABLE_ASSETS),
    description="Run every check on the published tables; writes nothing.",
)
JOBS = [*zone_jobs, lakehouse_job, checks_job]

SCHEDULES = [
    dg.ScheduleDefinition(
        job=lakehouse_job,
        cron_schedule="0 3 * * *",
        name="daily_lakehouse",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
]


def landing_fingerprint(root: str) -> str:
    """A digest of every landing file's path and size: it changes when files arrive or change. Entries
    that are no regular file or cannot be examined count by name (stat only: nothing is opened)."""
    store = open_store(root)
    digest = hashlib.sha256()
    for source in SOURCE_OF.values():
        listing = landing_files(store, source)
        for path in sorted([*listing.files, *listing.skipped, *listing.unreadable]):
            try:
                size = store.size(path) if path in listing.files else -1
            except OSError:  # removed since it was listed
                size = -1
            digest.update(f"{path}\0{size}\n".encode())
    return digest.hexdigest()


@dg.sensor(
    job=lakehouse_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts lakehouse_job when landing files appear or change.",
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource):
    try:
        fingerprint = landing_fingerprint(landing.root)
    except StoreError as err:
        return dg.SkipReason(str(err))
    if fingerprint == context.cursor:
        return dg.SkipReason("no new landing files")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint)


SENSORS = [landing_sensor]
