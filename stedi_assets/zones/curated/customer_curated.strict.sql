-- Strict: trusted customers with at least one trusted accelerometer reading (matched on identity key).
SELECT c.*
FROM customer_trusted c
WHERE identity_key(c.email) IN (SELECT identity_key(a.user) FROM accelerometer_trusted a)
