-- Strict: trusted customers with at least one trusted accelerometer reading (matched on identity key).
SELECT c.*
FROM customer_trusted c
WHERE lower(trim(BOTH ' ' FROM c.email)) IN (SELECT lower(trim(BOTH ' ' FROM a.user)) FROM accelerometer_trusted a)
