-- Rubric: every landing customer record that has a research-consent date.
SELECT customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate
FROM customer_landing
WHERE shareWithResearchAsOfDate IS NOT NULL
