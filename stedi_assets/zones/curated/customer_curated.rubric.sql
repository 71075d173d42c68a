-- Rubric: trusted customer rows (one per row, no join fan-out) with at least one trusted
-- accelerometer reading whose user equals their e-mail.
SELECT c.*
FROM customer_trusted c
WHERE c.email IN (SELECT a.user FROM accelerometer_trusted a)
