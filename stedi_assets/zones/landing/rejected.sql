-- The quarantine: every rejected line of every landing source, with its file, line, raw text and reason.
SELECT * FROM customer_landing_rejected
UNION ALL
SELECT * FROM accelerometer_landing_rejected
UNION ALL
SELECT * FROM step_trainer_landing_rejected
