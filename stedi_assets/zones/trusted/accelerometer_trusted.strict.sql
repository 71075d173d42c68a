-- Strict: distinct readings of consenting customers (user matched on identity_key(user) to the customer's
-- identity key), taken at or after that customer's research-consent date.
SELECT DISTINCT a.user, a.timestamp, a.x, a.y, a.z
FROM accelerometer_landing a
JOIN customer_trusted c ON identity_key(a.user) = identity_key(c.email)
WHERE a.timestamp >= c.shareWithResearchAsOfDate
