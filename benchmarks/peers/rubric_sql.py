"""The rubric policy's tables (shared/ZONE_RULES.md) as a hand-written job states them: one SELECT each, in
the SQL both Spark and DuckDB run, over views named after the tables. Written apart from the project's
zones/*/*.rubric.sql on purpose, so that equal counts check both."""

from __future__ import annotations

# landing table -> its folder under the landing root
LANDING = {
    "customer_landing": "customer",
    "accelerometer_landing": "accelerometer",
    "step_trainer_landing": "step_trainer",
}

# in dependency order; IN (subquery) is a semi-join in both engines, so no row repeats through a join
DERIVED = {
    "customer_trusted": "SELECT * FROM customer_landing WHERE shareWithResearchAsOfDate IS NOT NULL",
    "accelerometer_trusted": (
        "SELECT a.user, a.timestamp, a.x, a.y, a.z FROM accelerometer_landing a "
        "WHERE a.user IN (SELECT c.email FROM customer_trusted c)"
    ),
    "customer_curated": (
        "SELECT * FROM customer_trusted c WHERE c.email IN (SELECT a.user FROM accelerometer_trusted a)"
    ),
    "step_trainer_trusted": (
        "SELECT * FROM step_trainer_landing s WHERE s.serialNumber IN (SELECT c.serialNumber FROM customer_curated c)"
    ),
    "machine_learning_curated": (
        "SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.timestamp, a.x, a.y, a.z "
        "FROM step_trainer_trusted s JOIN accelerometer_trusted a ON s.sensorReadingTime = a.timestamp"
    ),
}
