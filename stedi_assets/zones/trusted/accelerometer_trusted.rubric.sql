-- Rubric: landing readings whose user equals the e-mail of a trusted customer (exact match; a
-- semi-join, so a customer record delivered twice does not repeat a reading).
SELECT a.user, a.timestamp, a.x, a.y, a.z
FROM accelerometer_landing a
WHERE a.user IN (SELECT c.email FROM customer_trusted c)
