-- Strict: distinct readings of consenting customers (user matched on lower(trim(BOTH ' ' FROM user)) to the
-- identity key), taken at or after that customer's research-consent date.
SELECT DISTINCT a.user, a.timestamp, a.x, a.y, a.z
FROM accelerometer_landing a
JOIN customer_trusted c ON lower(trim(BOTH ' ' FROM a.user)) = lower(trim(BOTH ' ' FROM c.email))
WHERE a.timestamp >= c.shareWithResearchAsOfDate
