CREATE EXTERNAL TABLE IF NOT EXISTS `${curated_database}`.`customer_curated` (
  `customerName` string COMMENT 'Full name of the customer.',
  `email` string COMMENT 'E-mail address; lower(trim(email)) is the identity key of the customer.',
  `phone` string COMMENT 'Phone number.',
  `birthDay` string COMMENT 'Birthday, YYYY-MM-DD.',
  `serialNumber` string COMMENT 'Serial number of the Step Trainer of the customer.',
  `registrationDate` bigint COMMENT 'Registration time, epoch milliseconds.',
  `lastUpdateDate` bigint COMMENT 'Time of this record, epoch milliseconds; the latest record wins.',
  `shareWithResearchAsOfDate` bigint COMMENT 'Research consent since (epoch ms); null means no consent to research use.',
  `shareWithPublicAsOfDate` bigint COMMENT 'Consent to public sharing since (epoch ms), or null.',
  `shareWithFriendsAsOfDate` bigint COMMENT 'Consent to sharing with friends since (epoch ms), or null.'
)
COMMENT 'Consenting customers who have accelerometer data.'
STORED AS PARQUET
LOCATION '${lake}/curated/customer_curated/snapshots/${customer_curated_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
