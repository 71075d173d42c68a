-- Rubric: landing step readings whose serial number is that of some curated customer (a semi-join).
SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject
FROM step_trainer_landing s
WHERE s.serialNumber IN (SELECT c.serialNumber FROM customer_curated c)
