-- Strict: distinct step readings attributed to a curated customer, at or after that customer's
-- research-consent date. A reading (serial S, time T) belongs to the only winning customer record
-- with serial S; when several share S, to the one candidate with an accelerometer reading (landing,
-- any consent) at T. No such single candidate: the reading is ambiguous and excluded.
WITH readings AS (
    SELECT DISTINCT sensorReadingTime, serialNumber, distanceFromObject
    FROM step_trainer_landing
),
accelerometer_times AS (
    SELECT DISTINCT identity_key(a.user) AS customer_key, a.timestamp
    FROM accelerometer_landing a
),
candidates AS (
    SELECT r.sensorReadingTime, r.serialNumber, r.distanceFromObject, w.customer_key,
           CASE WHEN t.customer_key IS NULL THEN 0 ELSE 1 END AS has_accelerometer
    FROM readings r
    JOIN _customer_latest w ON r.serialNumber = w.serialNumber
    LEFT JOIN accelerometer_times t
           ON t.customer_key = w.customer_key AND t.timestamp = r.sensorReadingTime
),
scored AS (
    SELECT c.*,
           count(*) OVER (PARTITION BY sensorReadingTime, serialNumber, distanceFromObject) AS n_candidates,
           sum(has_accelerometer) OVER (PARTITION BY sensorReadingTime, serialNumber, distanceFromObject) AS n_matching
    FROM candidates c
)
SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, s.customer_key
FROM scored s
JOIN customer_curated cc ON s.customer_key = identity_key(cc.email)
WHERE (s.n_candidates = 1 OR (s.has_accelerometer = 1 AND s.n_matching = 1))
  AND s.sensorReadingTime >= cc.shareWithResearchAsOfDate
