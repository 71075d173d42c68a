-- Strict: each trusted step reading paired with the trusted accelerometer readings of the SAME
-- customer at the same time. No e-mail, name, phone, birthday or serial: the customer appears only
-- as customer_id, a keyed pseudonym (HMAC-SHA256) of the identity key.
SELECT pseudonym(s.customer_key) AS customer_id,
       s.sensorReadingTime, s.distanceFromObject, a.x, a.y, a.z
FROM step_trainer_trusted s
JOIN accelerometer_trusted a
  ON identity_key(a.user) = s.customer_key AND a.timestamp = s.sensorReadingTime
