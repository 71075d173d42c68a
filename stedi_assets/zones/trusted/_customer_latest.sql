-- Each customer's winning record, consent or not (a shared sub-rule, never published): per identity
-- key identity_key(email) (lower-cased, U+0020 spaces trimmed) the record with the greatest lastUpdateDate;
-- on a tie a record without research consent wins (privacy first), then the record in the later file,
-- then the later line.
SELECT customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate, customer_key
FROM (
    SELECT c.*,
           identity_key(c.email) AS customer_key,
           row_number() OVER (
               PARTITION BY identity_key(c.email)
               ORDER BY c.lastUpdateDate DESC,
                        CASE WHEN c.shareWithResearchAsOfDate IS NULL THEN 0 ELSE 1 END,
                        c.source_file DESC,
                        c.source_line DESC
           ) AS rank_in_key
    FROM customer_landing c
) ranked
WHERE rank_in_key = 1
