-- Rubric: trusted step readings joined to trusted accelerometer readings taken at the same time.
SELECT s.sensorReadingTime, s.serialNumber, s.distanceFromObject, a.timestamp, a.x, a.y, a.z
FROM step_trainer_trusted s
JOIN accelerometer_trusted a ON s.sensorReadingTime = a.timestamp
