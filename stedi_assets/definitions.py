"""The STEDI lakehouse: one Definitions with every table, its checks, the jobs, schedule and sensor."""

from __future__ import annotations

import dagster as dg

from .assets import TABLE_ASSETS
from .jobs import JOBS, SCHEDULES, SENSORS
from .resources import resources

defs = dg.Definitions(
    assets=TABLE_ASSETS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=resources(),
)
