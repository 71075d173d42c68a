-- Strict: each customer's winning (latest) record, kept only if it carries research consent;
-- a later record without consent revokes it. One row per identity key.
SELECT customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate
FROM _customer_latest
WHERE shareWithResearchAsOfDate IS NOT NULL
